"""The ADMM row layout: every constraint between objects and the coordinator is a block of *rows*.

For object i the solver stacks, in plan order, one row block per consensus link of the object
(``x_i[var]``, selection rows of its stacked vector, offset ``e = 0``) followed by one row block per
coupling term of the object (``B_t x_i + b_t``). So every link is the single equation

    M_i x_i + e_i == t_i                     (t_i: the object's rows of the target vector t)

where the coordinator owns the targets t: ``z_s[shared_var]`` for a consensus row block and the
per-term copy ``y_t`` for a coupling row block. The global row vector concatenates the objects'
row blocks in plan order of objects.

Row-block keys (stable across plan deltas, used by :class:`SolverState`):
``consensus:<limit>:<object>.<var>=<shared>.<shared_var>`` and
``coupling:<coupling>:<morphism>.<field>``.

Family members with equal vars and one link pattern share one read-only M and e (a *row
template*), and consecutive such members form a :class:`Run`: their x and their rows are two
equal-strided ranges, so the solver reads a family's values, duals and prices as one reshape.
An object's consensus row blocks are built from its template on first use (``ObjectRows.blocks``);
a solve of a family plan builds none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from catopt_dsl.ir.model import IRObject, IRPlan, IRShared

__all__ = ["RowBlock", "ObjectRows", "CouplingRows", "Layout", "LinkSpec", "Run", "build_layout"]


@dataclass(frozen=True, eq=False)
class RowBlock:
    key: str
    kind: str  # "consensus" | "coupling"
    object: str
    local: slice  # rows in the object's row vector
    rows: slice  # rows in the global row vector
    # consensus
    shared: str | None = None
    shared_var: str | None = None
    var: str | None = None  # the object's var the link equates
    # coupling
    coupling: str | None = None


#: one consensus link of a row pattern: the key's head and tail (the object's name goes between),
#: the link's first row among the object's rows, its size, the var's offset in the object's x,
#: the (shared block, shared var) pair, the shared block, the shared var and the object's var
LinkSpec = tuple[str, str, int, int, int, tuple[str, str], str, str, str]


@dataclass(frozen=True, eq=False)
class ObjectRows:
    obj: IRObject
    M: np.ndarray  # (r_i, n_i)
    e: np.ndarray  # (r_i,)
    rows: slice  # the object's range in the global row vector
    #: the coupling row blocks (after the consensus ones)
    terms: tuple[RowBlock, ...] = ()
    #: the consensus links, as the row pattern the object shares with its family (``blocks``
    #: builds their row blocks on first use: a solve reads them by run, ``Layout.runs``)
    links: tuple[LinkSpec, ...] = ()

    @cached_property
    def blocks(self) -> tuple[RowBlock, ...]:
        """The object's row blocks: one per consensus link, then one per coupling term."""
        name, offset = self.obj.name, self.rows.start
        return tuple(
            RowBlock(
                f"{head}{name}{tail}", "consensus", name, slice(local, local + size),
                slice(offset + local, offset + local + size), shared, shared_var, var,
            )
            for head, tail, local, size, _, _, shared, shared_var, var in self.links
        ) + self.terms


@dataclass(frozen=True, eq=False)
class CouplingRows:
    name: str
    sense: str
    rhs: np.ndarray  # (m,)
    terms: tuple[RowBlock, ...]
    term_index: np.ndarray  # (T, m) global row indices


@dataclass(frozen=True, eq=False)
class Run:
    """Consecutive objects (``objects[start:stop]``) with equal vars and one link pattern and no
    coupling terms, as family members usually are: their x and their rows are two equal-strided
    ranges, so whatever is read per member (the reported values, the prices, the state) is one
    reshape of the run's range, not a slice per member."""

    start: int
    stop: int
    x_start: int
    n: int  # each member's stacked x size
    row_start: int
    r: int  # each member's row count
    vars: tuple  # the members' IRVars (equal for all of them)
    #: each member's consensus links (its row pattern, see ``ObjectRows.links``)
    links: tuple[LinkSpec, ...]


@dataclass(frozen=True, eq=False)
class Layout:
    plan: IRPlan
    objects: tuple[ObjectRows, ...]
    shared: tuple[IRShared, ...]
    #: (block, var) -> (N, size) global row indices of every consensus row block linked to it
    consensus_index: dict[tuple[str, str], np.ndarray]
    couplings: tuple[CouplingRows, ...]
    total_rows: int
    #: object name -> its position in ``objects``
    index: dict[str, int] = field(default_factory=dict)
    #: each object's slice of the stacked x of all objects (objects in order)
    x_slices: tuple[slice, ...] = ()
    total_n: int = 0
    #: the concatenated e_i of all objects (the global row offsets)
    e: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: every object in exactly one run, in order (a run of one for an object unlike its neighbours)
    runs: tuple[Run, ...] = ()

    def object_rows(self, name: str) -> ObjectRows:
        found = self.index.get(name)
        if found is None:
            raise KeyError(name)
        return self.objects[found]

    #: (block, var) -> (N, size) positions in the stacked x of the object vars linked to it, in
    #: the order of ``consensus_index`` (the reported point is glued there, ``glue.py``)
    consensus_x: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    @cached_property
    def member_runs(self) -> tuple[Run, ...]:
        """``runs``, or a run of one per object when the layout was built without them."""
        if self.runs or not self.objects:
            return self.runs
        return tuple(
            Run(i, i + 1, xs.start, xs.stop - xs.start, o.rows.start, -1, o.obj.vars, ())
            for i, (o, xs) in enumerate(zip(self.objects, self.x_slices))
        )

    @cached_property
    def blocks(self) -> tuple[RowBlock, ...]:
        return tuple(b for o in self.objects for b in o.blocks)


def build_layout(plan: IRPlan) -> Layout:
    """Compute M_i, e_i and the global row index maps from the plan."""
    objects: list[ObjectRows] = []
    offset = 0
    term_rows: dict[str, list[RowBlock]] = {c.name: [] for c in plan.couplings}
    # each object's links and coupling terms, in plan order (one pass, not one per object)
    links_of: dict[str, list] = {}
    for link in plan.consensus:
        links_of.setdefault(link.object, []).append(link)
    terms_of: dict[str, list] = {}
    for coupling in plan.couplings:
        for term in coupling.terms:
            terms_of.setdefault(term.object, []).append((coupling, term))
    # Members of a family usually link the same vars and have no coupling terms: their M and e
    # are one read-only array per link pattern, shared, not built once per member (set-up time
    # of a 512-site consensus was dominated by these small arrays), and what their links have
    # in common (var offsets and sizes, the shared var, the key's tail) is worked out once per
    # pattern: a member then costs its row blocks and its ObjectRows, nothing more.
    templates: dict[tuple, tuple[np.ndarray, np.ndarray, tuple]] = {}
    # per (shared block, var): the first row and the first x position of every link to it (the
    # index arrays are built at the end, one broadcast per shared var)
    cons_start: dict[tuple[str, str], tuple[int, list[np.ndarray], list[np.ndarray]]] = {}
    x_offset = 0
    x_slices: list[slice] = []
    runs: list[Run] = []
    run: list | None = None
    for obj in plan.objects:
        vars_ = obj.vars
        links = links_of.get(obj.name, ())
        terms = terms_of.get(obj.name, ())
        # the vars (names, shapes, offsets: equal vars hash alike) and the links fix M and e
        pattern = (vars_, tuple([(lk.limit, lk.var, lk.shared, lk.shared_var) for lk in links]))
        found = templates.get(pattern)
        if found is None:
            n = 0
            for v in vars_:
                n += v.size
            spans = []
            specs = []
            local = 0
            for lk in links:
                var = obj.var(lk.var)
                size = var.size
                key = (lk.shared, lk.shared_var)
                specs.append((f"consensus:{lk.limit}:", f".{lk.var}={lk.shared}.{lk.shared_var}", local, size,
                              var.offset, key, lk.shared, lk.shared_var, lk.var))
                spans.append((var.offset, size))
                local += size
            M_links = np.zeros((local, n))
            row = 0
            for start, size in spans:
                M_links[row + np.arange(size), start + np.arange(size)] = 1.0
                row += size
            M_links.setflags(write=False)
            e_links = np.zeros(local)
            e_links.setflags(write=False)
            found = templates[pattern] = (M_links, e_links, tuple(specs))
        M, e, specs_ = found
        n = M.shape[1]
        if run is not None and not terms and run[6] is found:  # one pattern: equal vars and links
            run[1] += 1
        else:
            if run is not None:
                runs.append(_run(run, cons_start))
            # [start, stop, x_start, n, row_start, vars, template (None: coupling terms), links]
            run = [len(objects), len(objects) + 1, x_offset, n, offset, vars_, found if not terms else None, specs_]
        blocks: list[RowBlock] = []
        local = M.shape[0]
        if terms:
            Ms: list[np.ndarray] = [M]
            es: list[np.ndarray] = [e]
            for coupling, term in terms:
                B = np.asarray(term.B, dtype=np.float64).reshape(-1, n)
                m = B.shape[0]
                block = RowBlock(
                    key=f"coupling:{coupling.name}:{term.morphism}.{term.field}",
                    kind="coupling",
                    object=obj.name,
                    local=slice(local, local + m),
                    rows=slice(offset + local, offset + local + m),
                    coupling=coupling.name,
                )
                term_rows[coupling.name].append(block)
                Ms.append(B)
                es.append(np.asarray(term.b, dtype=np.float64).reshape(-1))
                blocks.append(block)
                local += m
            M, e = np.vstack(Ms), np.concatenate(es)
        objects.append(ObjectRows(obj, M, e, slice(offset, offset + local), tuple(blocks) if blocks else (), specs_))
        offset += local
        x_slices.append(slice(x_offset, x_offset + n))
        x_offset += n
    if run is not None:
        runs.append(_run(run, cons_start))
    couplings: list[CouplingRows] = []
    for coupling in plan.couplings:
        terms = term_rows[coupling.name]
        m = int(np.asarray(coupling.rhs).size)
        index = (
            np.stack([np.arange(t.rows.start, t.rows.stop) for t in terms])
            if terms
            else np.zeros((0, m), dtype=np.int64)
        )
        couplings.append(
            CouplingRows(
                name=coupling.name,
                sense=coupling.sense,
                rhs=np.asarray(coupling.rhs, dtype=np.float64).reshape(-1),
                terms=tuple(terms),
                term_index=index,
            )
        )
    # a shared var's links all have its size (the checker matched the shapes)
    consensus_index = {
        key: np.concatenate(rows)[:, None] + np.arange(size)[None, :] for key, (size, rows, _) in cons_start.items()
    }
    consensus_x = {
        key: np.concatenate(xs)[:, None] + np.arange(size)[None, :] for key, (size, _, xs) in cons_start.items()
    }
    return Layout(
        plan=plan,
        objects=tuple(objects),
        shared=plan.shared,
        consensus_index=consensus_index,
        couplings=tuple(couplings),
        total_rows=offset,
        index={o.obj.name: i for i, o in enumerate(objects)},
        x_slices=tuple(x_slices),
        total_n=x_offset,
        e=np.concatenate([o.e for o in objects]) if objects else np.zeros(0),
        consensus_x=consensus_x,
        runs=tuple(runs),
    )


def _run(run: list, cons_start: dict[tuple[str, str], tuple[int, list[np.ndarray], list[np.ndarray]]]) -> Run:
    """The :class:`Run` of a finished run, its links' first rows and x positions recorded per
    shared var (runs finish in plan order, so every shared var's links stay in plan order)."""
    start, stop, x_start, n, row_start, vars_, found, specs = run
    # a member's row count: the template's (a run with coupling terms is one object: no stride)
    stride = int(found[0].shape[0]) if found is not None else 0
    step = np.arange(stop - start, dtype=np.int64)
    for _, _, local0, size, var_offset, key, _, _, _ in specs:
        entry = cons_start.get(key)
        if entry is None:
            entry = cons_start[key] = (size, [], [])
        entry[1].append(row_start + local0 + stride * step)
        entry[2].append(x_start + var_offset + n * step)
    if found is None:  # an object with coupling terms: a run of its own, its rows not uniform
        return Run(start, stop, x_start, n, row_start, -1, tuple(vars_), ())
    return Run(start, stop, x_start, n, row_start, stride, tuple(vars_), found[2])
