"""Identifier naming for every code-generation target, run once before any template.

One rule for all targets (documented in ``docs/codegen.md``):

1. **Split** the spec name into words: every run of non-alphanumeric characters (``_``, ``[``,
   ``]``, ...) separates words, and so do camelCase boundaries (``gpuFleet`` -> ``gpu``, ``Fleet``;
   ``HTTPServer`` -> ``HTTP``, ``Server``). Digits stay attached to the word before them, so
   ``AllocationV2`` -> ``Allocation``, ``V2`` and the family member ``site[3]`` -> ``site``, ``3``.
2. **Case** the words for the target and kind: types PascalCase, fields / functions / modules
   snake_case, constants SCREAMING_SNAKE_CASE (the same for Python, Rust and C++).
3. **Escape** once, against the target's full reserved list: Python appends ``_``; Rust uses a raw
   identifier ``r#type`` except for ``self``, ``Self``, ``super``, ``crate`` (which cannot be raw)
   and the prelude names (raw identifiers do not stop shadowing), which get ``_``; C++ appends ``_``.

Derived names (``encode_x``, ``XMsg``) are built from the *unescaped* spec name (``derive``), so
``type`` yields ``encode_type`` and ``TypeMsg``, never ``encode_type_``.

Two different spec names that end up as the same identifier in one scope are a collision
(E0701 NAME_COLLISION); :func:`name_targets` finds them once for every target and
:func:`report_collisions` reports each once, naming every target it breaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from catopt_dsl.diagnostics import CatoptError, DiagnosticSink, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.ir.model import IRObject, IRPlan
from catopt_dsl.span import Span

Target = Literal["python", "rust", "cpp"]
Kind = Literal["type", "field", "fn", "const", "module"]

TARGETS: tuple[Target, ...] = ("python", "rust", "cpp")
KINDS: tuple[Kind, ...] = ("type", "field", "fn", "const", "module")

# ---------------------------------------------------------------------------------------------
# Reserved words. Hard-coded (not read from the running interpreter) so that generated code is the
# same whichever Python version runs catoptc.
# ---------------------------------------------------------------------------------------------

# Python 3.11 keyword.kwlist (+ soft keywords, and `type`, soft since 3.12).
_PY_KWLIST = frozenset(
    ["False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield"]
)
_PY_SOFT = frozenset({"match", "case", "type", "_"})

# Builtin functions and types (3.8 .. 3.13, exceptions excluded): shadowing them in a class body or
# module would break generated code that calls them, and it confuses mypy.
_PY_BUILTINS = frozenset(
    ["abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "breakpoint", "bytearray", "bytes", "callable", "chr", "classmethod", "compile", "complex", "copyright", "credits", "delattr", "dict", "dir", "divmod", "enumerate", "eval", "exec", "exit", "filter", "float", "format", "frozenset", "getattr", "globals", "hasattr", "hash", "help", "hex", "id", "input", "int", "isinstance", "issubclass", "iter", "len", "license", "list", "locals", "map", "max", "memoryview", "min", "next", "object", "oct", "open", "ord", "pow", "print", "property", "quit", "range", "repr", "reversed", "round", "set", "setattr", "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "type", "vars", "zip", "Ellipsis", "NotImplemented"]
)

# Names the generated Python modules themselves bind (imports and conventional parameters).
_PY_GENERATED = frozenset(
    {"annotations", "np", "npt", "rt", "dataclass", "field", "Any", "ClassVar", "self", "cls"}
)

PYTHON_RESERVED: frozenset[str] = _PY_KWLIST | _PY_SOFT | _PY_BUILTINS | _PY_GENERATED

# Top-level module names a generated *package* must not take: a package named `numpy` on sys.path
# would shadow the numpy that the package itself imports. The standard library of Python 3.11
# (sys.stdlib_module_names, hard-coded so output does not depend on the running interpreter) and
# every distribution that generated code or the catopt_dsl runtime imports.
PY_MODULE_NAMES: frozenset[str] = frozenset(
    ["__future__", "catopt_dsl", "numpy", "scipy", "cvxpy", "clarabel", "osqp", "ecos", "scs", "ray", "lark", "jinja2", "click", "black", "crc32c", "matplotlib", "hypothesis", "pytest", "syrupy", "mypy", "ruff", "setuptools", "pip", "pkg_resources", "typing_extensions", "abc", "aifc", "antigravity", "argparse", "array", "ast", "asynchat", "asyncio", "asyncore", "atexit", "audioop", "base64", "bdb", "binascii", "bisect", "builtins", "bz2", "cProfile", "calendar", "cgi", "cgitb", "chunk", "cmath", "cmd", "code", "codecs", "codeop", "collections", "colorsys", "compileall", "concurrent", "configparser", "contextlib", "contextvars", "copy", "copyreg", "crypt", "csv", "ctypes", "curses", "dataclasses", "datetime", "dbm", "decimal", "difflib", "dis", "distutils", "doctest", "email", "encodings", "ensurepip", "enum", "errno", "faulthandler", "fcntl", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools", "gc", "genericpath", "getopt", "getpass", "gettext", "glob", "graphlib", "grp", "gzip", "hashlib", "heapq", "hmac", "html", "http", "idlelib", "imaplib", "imghdr", "imp", "importlib", "inspect", "io", "ipaddress", "itertools", "json", "keyword", "lib2to3", "linecache", "locale", "logging", "lzma", "mailbox", "mailcap", "marshal", "math", "mimetypes", "mmap", "modulefinder", "msilib", "msvcrt", "multiprocessing", "netrc", "nis", "nntplib", "nt", "ntpath", "nturl2path", "numbers", "opcode", "operator", "optparse", "os", "ossaudiodev", "pathlib", "pdb", "pickle", "pickletools", "pipes", "pkgutil", "platform", "plistlib", "poplib", "posix", "posixpath", "pprint", "profile", "pstats", "pty", "pwd", "py_compile", "pyclbr", "pydoc", "pydoc_data", "pyexpat", "queue", "quopri", "random", "re", "readline", "reprlib", "resource", "rlcompleter", "runpy", "sched", "secrets", "select", "selectors", "shelve", "shlex", "shutil", "signal", "site", "smtpd", "smtplib", "sndhdr", "socket", "socketserver", "spwd", "sqlite3", "sre_compile", "sre_constants", "sre_parse", "ssl", "stat", "statistics", "string", "stringprep", "struct", "subprocess", "sunau", "symtable", "sys", "sysconfig", "syslog", "tabnanny", "tarfile", "telnetlib", "tempfile", "termios", "textwrap", "this", "threading", "time", "timeit", "tkinter", "token", "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "tty", "turtle", "turtledemo", "types", "typing", "unicodedata", "unittest", "urllib", "uu", "uuid", "venv", "warnings", "wave", "weakref", "webbrowser", "winreg", "winsound", "wsgiref", "xdrlib", "xml", "xmlrpc", "zipapp", "zipfile", "zipimport", "zlib", "zoneinfo"]
)

# Rust 2021 strict and reserved keywords, plus `gen` (reserved in 2024).
RUST_KEYWORDS: frozenset[str] = frozenset(
    ["as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen"]
)
# Keywords that cannot be written as raw identifiers.
RUST_NO_RAW: frozenset[str] = frozenset({"self", "Self", "super", "crate", "_"})
# Prelude names: a raw identifier would not help, the generated code needs the std meaning.
RUST_PRELUDE: frozenset[str] = frozenset(
    ["Option", "Some", "None", "Result", "Ok", "Err", "Vec", "String", "Box", "ToString", "ToOwned", "Clone", "Copy", "Send", "Sync", "Sized", "Unpin", "Drop", "Fn", "FnMut", "FnOnce", "Default", "Eq", "PartialEq", "Ord", "PartialOrd", "Iterator", "IntoIterator", "DoubleEndedIterator", "ExactSizeIterator", "Extend", "AsRef", "AsMut", "From", "Into", "TryFrom", "TryInto", "FromIterator", "Debug", "Hash"]
)

# C++20 keywords and alternative tokens, identifiers with special meaning, and common macros /
# reserved library names that a #include may define.
CPP_KEYWORDS: frozenset[str] = frozenset(
    ["alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept", "const", "consteval", "constexpr", "constinit", "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete", "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast", "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "final", "override", "import", "module"]
)
CPP_MACROS: frozenset[str] = frozenset(
    ["NULL", "assert", "errno", "EOF", "stdin", "stdout", "stderr", "INT_MAX", "INT_MIN", "UINT_MAX", "LONG_MAX", "LONG_MIN", "ULONG_MAX", "LLONG_MAX", "LLONG_MIN", "ULLONG_MAX", "SHRT_MAX", "SHRT_MIN", "USHRT_MAX", "CHAR_BIT", "CHAR_MAX", "CHAR_MIN", "SCHAR_MAX", "SCHAR_MIN", "UCHAR_MAX", "SIZE_MAX", "PTRDIFF_MAX", "PTRDIFF_MIN", "INTMAX_MAX", "INTMAX_MIN", "UINTMAX_MAX", "INT8_MAX", "INT16_MAX", "INT32_MAX", "INT64_MAX", "INT8_MIN", "INT16_MIN", "INT32_MIN", "INT64_MIN", "UINT8_MAX", "UINT16_MAX", "UINT32_MAX", "UINT64_MAX", "DBL_MAX", "DBL_MIN", "DBL_EPSILON", "DBL_DIG", "FLT_MAX", "FLT_MIN", "FLT_EPSILON", "FLT_DIG", "LDBL_MAX", "LDBL_MIN", "HUGE_VAL", "HUGE_VALF", "INFINITY", "NAN", "FP_NAN", "FP_INFINITE", "FP_ZERO", "FP_NORMAL", "FP_SUBNORMAL", "M_PI", "M_E", "EXIT_SUCCESS", "EXIT_FAILURE", "RAND_MAX", "BUFSIZ", "FILENAME_MAX", "FOPEN_MAX", "L_tmpnam", "TMP_MAX", "SEEK_SET", "SEEK_CUR", "SEEK_END", "CLOCKS_PER_SEC", "EDOM", "ERANGE", "EILSEQ", "MB_LEN_MAX", "offsetof", "setjmp", "longjmp", "va_arg", "va_start", "va_end", "va_copy", "unix", "linux", "major", "minor", "I", "complex", "imaginary", "bool_true_false_are_defined", "true_false", "std", "main"]
) | frozenset({"N"})  # every problem struct has a member `N`; a class cannot share a member's name
CPP_RESERVED: frozenset[str] = CPP_KEYWORDS | CPP_MACROS

# Members the generated Python classes inherit from ``catopt_dsl.runtime``: a spec name that lands
# on one of them is escaped like a keyword (``build`` -> ``build_``) so it cannot hide the method.
#: members the generated C++ classes define (and names their member functions bind that would
#: shadow a field: `w`, the record writer in encode(); `other`, operator=='s argument)
CPP_RESERVED_MEMBERS: Mapping[str, frozenset[str]] = {
    "record": frozenset({"encode", "decode", "w", "other"}),
    "problem": frozenset({"load", "member", "members", "indices", "functors", "var_shapes", "param_shapes"}),
}

PY_RESERVED_MEMBERS: Mapping[str, frozenset[str]] = {
    "record": frozenset(
        {"to_bytes", "from_bytes", "to_dict", "from_dict", "ir_schema", "FIELDS", "SCHEMA_NAME",
         "SCHEMA_VERSION"}
    ),
    "problem": frozenset(
        {"build", "ir", "name", "family", "index", "platform", "adapter", "functors", "param",
         "params", "var_shapes", "n", "NAME", "FAMILY", "INDEX", "PLATFORM", "ADAPTER",
         "VAR_SHAPES", "PARAM_NAMES", "set_param"}
    ),
    "family": frozenset({"members", "member", "name", "NAME", "MEMBER"}),
    "plan": frozenset(
        {"ir", "name", "solve", "centralized", "objects", "deltas", "NAME", "DELTA_PATH", "param", "set_param"}
    ),
}

_KIND_ALIASES: Mapping[str, Kind] = {
    "type": "type",
    "class": "type",
    "struct": "type",
    "schema": "type",
    "object": "type",
    "local": "type",
    "family": "type",
    "shared": "type",
    "field": "field",
    "member": "field",
    "param": "field",
    "var": "field",
    "schema_field": "field",
    "fn": "fn",
    "function": "fn",
    "method": "fn",
    "delta": "fn",
    "const": "const",
    "constant": "const",
    "module": "module",
    "namespace": "module",
    "package": "module",
}

# ---------------------------------------------------------------------------------------------
# Case conversion
# ---------------------------------------------------------------------------------------------

# Upper-case runs before a capitalised word ("HTTP" in "HTTPServer"), capitalised or lower-case
# words, then lone digit runs; digits glue to the word before them.
_WORD = re.compile(r"[A-Z]+[0-9]*(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")


_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def split_words(name: str) -> list[str]:
    """The words of a spec name (see the module docstring); never empty."""
    return list(_words(name))


# Every name is cased for each of three targets and often more than one kind; bounded, so a
# long-lived process compiling many plans does not grow without limit.
@lru_cache(maxsize=1 << 16)
def _words(name: str) -> tuple[str, ...]:
    words: list[str] = []
    for chunk in _SEPARATORS.split(name):
        words.extend(_WORD.findall(chunk))
    # A name made only of underscores has no words; give it one so every name maps somewhere.
    return tuple(words) or ("unnamed",)


def snake_case(name: str) -> str:
    return "_".join(w.lower() for w in _words(name))


def pascal_case(name: str) -> str:
    return "".join(w[:1].upper() + w[1:].lower() for w in _words(name))


def screaming_case(name: str) -> str:
    return "_".join(w.upper() for w in _words(name))


_CASE = {
    "type": pascal_case,
    "field": snake_case,
    "fn": snake_case,
    "const": screaming_case,
    "module": snake_case,
}


def _start(kind: Kind, ident: str) -> str:
    """Identifiers cannot start with a digit, but ``_3d`` splits into the words ``3``, ``d``:
    such an identifier gets ``_`` in front (``_3_d``, ``_3D``), a module name ``plan_`` (a
    leading underscore would make a package private)."""
    if ident[:1].isdigit():
        return ("plan_" if kind == "module" else "_") + ident
    return ident


def normalise_kind(kind: str) -> Kind:
    """Map a namer kind or an IR kind (``object``, ``param``, ``delta``, ...) to a namer kind."""
    try:
        return _KIND_ALIASES[kind]
    except KeyError:
        raise ValueError(f"unknown name kind {kind!r}; expected one of {sorted(_KIND_ALIASES)}") from None


# ---------------------------------------------------------------------------------------------
# The namer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Namer:
    """Turns spec names into identifiers of one target: ``Namer("rust").type_name("site[3]")``."""

    target: Target

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; expected one of {TARGETS}")

    # -- escaping ------------------------------------------------------------------------------
    def is_reserved(self, ident: str) -> bool:
        if self.target == "python":
            return ident in PYTHON_RESERVED
        if self.target == "rust":
            return ident in RUST_KEYWORDS or ident in RUST_PRELUDE or ident in RUST_NO_RAW
        return ident in CPP_RESERVED

    def escape(self, ident: str, reserved: AbstractSet[str] = frozenset()) -> str:
        """Escape an already-cased identifier once; ``reserved`` adds context names (members)."""
        if self.target == "rust":
            if ident in RUST_NO_RAW or ident in RUST_PRELUDE or ident in reserved:
                return ident + "_"
            if ident in RUST_KEYWORDS:
                return "r#" + ident
            return ident
        if self.is_reserved(ident) or ident in reserved:
            return ident + "_"
        return ident

    # -- public API ----------------------------------------------------------------------------
    def name(self, kind: str, name: str, reserved: AbstractSet[str] = frozenset()) -> str:
        """The identifier for spec name ``name`` used as a ``kind``."""
        k = normalise_kind(kind)
        return self.escape(_start(k, _CASE[k](name)), reserved)

    def type_name(self, n: str, reserved: AbstractSet[str] = frozenset()) -> str:
        return self.name("type", n, reserved)

    def field_name(self, n: str, reserved: AbstractSet[str] = frozenset()) -> str:
        return self.name("field", n, reserved)

    def fn_name(self, n: str, reserved: AbstractSet[str] = frozenset()) -> str:
        return self.name("fn", n, reserved)

    def const_name(self, n: str, reserved: AbstractSet[str] = frozenset()) -> str:
        return self.name("const", n, reserved)

    def module_name(self, n: str, reserved: AbstractSet[str] = frozenset()) -> str:
        return self.name("module", n, reserved)

    def package_name(self, n: str) -> str:
        """The top-level package (Python), crate or library name for a spec stem: snake_case, not
        starting with a digit (``1`` -> ``plan_1``), and for Python never a module that generated
        code imports or the standard library has (``numpy`` -> ``numpy_``)."""
        return self.module_name(n, PY_MODULE_NAMES if self.target == "python" else frozenset())

    def derive(self, kind: str, *parts: str | int, reserved: AbstractSet[str] = frozenset()) -> str:
        """A derived name from UNescaped parts: ``derive("fn", "encode", "type")`` -> ``encode_type``.

        The parts are joined with ``_`` before casing, so ``derive("type", "type", "msg")`` is
        ``TypeMsg`` and ``derive("type", "Allocation", "v2")`` is ``AllocationV2``.
        """
        return self.name(kind, "_".join(str(p) for p in parts), reserved)

    def schema_type(self, schema: str, version: int) -> str:
        """The class / struct name of one schema version: ``Allocation`` v2 -> ``AllocationV2``."""
        return self.derive("type", schema, f"v{version}")


# ---------------------------------------------------------------------------------------------
# Collisions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collision:
    """Two or more distinct spec names that become ``identifier`` in one scope of ``target``."""

    target: Target
    scope: str
    identifier: str
    names: tuple[tuple[str, str], ...]  # (kind, spec name), in the order they were given


@dataclass(frozen=True)
class Scope:
    """One namespace of generated code: its (kind, spec name) entries and its inherited members."""

    name: str
    entries: tuple[tuple[str, str], ...]
    reserved: frozenset[str] = frozenset()  # inherited members: escaped with `_`
    taken: frozenset[str] = frozenset()  # identifiers the backend itself defines here (`Plan`)


def find_collisions(
    target: Target,
    names: Iterable[tuple[str, str]],
    *,
    scope: str = "",
    reserved: AbstractSet[str] = frozenset(),
    taken: AbstractSet[str] = frozenset(),
) -> list[Collision]:
    """Collisions among ``names`` (one scope) in one target; identical entries count once.

    Each collision lists its names in input order, so a caller that passes the later declaration
    first gets the diagnostic at the name to rename.

    ``taken`` lists identifiers the generated code defines itself in this scope; a spec name that
    lands on one collides with the entry ``("generated", identifier)``.
    """
    namer = Namer(target)
    return _collisions(target, scope, [(namer.name(kind, name, reserved), kind, name) for kind, name in names], taken)


def _collisions(
    target: Target, scope: str, named: Iterable[tuple[str, str, str]], taken: AbstractSet[str]
) -> list[Collision]:
    """:func:`find_collisions` on (identifier, kind, spec name) entries already named."""
    # dicts as ordered sets: first-appearance order, identical entries once
    by_ident: dict[str, dict[tuple[str, str], None]] = {t: {("generated", t): None} for t in sorted(taken)}
    for ident, kind, name in named:
        by_ident.setdefault(ident, {})[(normalise_kind(kind), name)] = None
    return [
        Collision(target, scope, ident, tuple(entries))
        for ident, entries in sorted(by_ident.items())
        if len(entries) > 1
    ]


def _all_plans(plan: IRPlan) -> list[tuple[str, IRPlan]]:
    """The plan and every delta result (recursively), with a scope label each."""
    out: list[tuple[str, IRPlan]] = [("plan", plan)]
    for d in plan.deltas:
        for label, p in _all_plans(d.result):
            out.append((f"delta {d.name} / {label}" if label != "plan" else f"delta {d.name}", p))
    return out


def plan_scopes(plan: IRPlan, target: Target = "python") -> list[Scope]:
    """The namespaces the backends generate for ``plan`` (the Python layout; Rust/C++ follow it).

    * the module: schema version types, object / family types, family containers, delta plans;
    * one per schema version: its fields;
    * one per object or family: its params;
    * one per plan class: its object attributes and delta methods.
    """
    members = PY_RESERVED_MEMBERS if target == "python" else {}
    plans = _all_plans(plan)
    module: list[tuple[str, str]] = []
    scopes: list[Scope] = []
    seen_schema: set[str] = set()
    seen_obj: set[str] = set()
    for label, p in plans:
        for s in p.schemas:
            module.append(("type", f"{s.name}_v{s.version}"))
            if s.key not in seen_schema:
                seen_schema.add(s.key)
                scopes.append(
                    Scope(f"schema {s.key}", tuple(("field", f.name) for f in s.fields), members.get("record", frozenset()))
                )
        plan_entries: list[tuple[str, str]] = []
        for o in p.objects:
            unit = o.family if o.family is not None else o.name
            module.append(("type", unit))
            if o.family is not None:
                module.append(("type", f"{o.family}_family"))
            plan_entries.append(("field", unit))
            if unit not in seen_obj:
                seen_obj.add(unit)
                scopes.append(
                    Scope(f"local problem {unit}", tuple(("field", q.name) for q in o.params), members.get("problem", frozenset()))
                )
        for d in p.deltas:
            module.append(("type", f"{d.name}_plan"))
            plan_entries.append(("fn", d.name))
        scopes.append(Scope(label, tuple(dict.fromkeys(plan_entries)), members.get("plan", frozenset())))
    scopes.insert(0, Scope("the module", tuple(dict.fromkeys(module)), taken=frozenset({"Plan", "PlanResult"})))
    return scopes


# ---------------------------------------------------------------------------------------------
# name_targets: the pipeline stage
# ---------------------------------------------------------------------------------------------


def _members(target: Target) -> Mapping[str, frozenset[str]]:
    return PY_RESERVED_MEMBERS if target == "python" else CPP_RESERVED_MEMBERS if target == "cpp" else {}


def target_scopes(plan: IRPlan, target: Target) -> list[Scope]:
    """Every namespace ``target``'s generated code has for ``plan``: the module, each schema
    version's fields, each object's params and vars, each plan class, and (native targets) the
    plans module's functions; with the members each target's classes define reserved."""
    members = _members(target)
    # The first object of each unit (a family's first member), found in one pass: searching the
    # objects once per scope was quadratic in the number of written-out objects.
    samples: dict[str, IRObject] = {}
    for _, p in _all_plans(plan):
        for o in p.objects:
            samples.setdefault(o.family or o.name, o)
    scopes: list[Scope] = []
    for sc in plan_scopes(plan, target):
        if sc.name.startswith("schema "):
            sc = Scope(sc.name, sc.entries, members.get("record", frozenset()), sc.taken)
        elif sc.name.startswith("local problem "):
            unit = sc.name[len("local problem ") :]
            sample = samples[unit]
            entries = tuple(dict.fromkeys([*(("field", v.name) for v in sample.vars), *sc.entries]))
            sc = Scope(sc.name, entries, members.get("problem", frozenset()), sc.taken)
        scopes.append(sc)
    if target != "python":
        fns = [("fn", "plan" if label == "plan" else "_".join([*_delta_path(label), "plan"])) for label, _ in _all_plans(plan)]
        scopes.append(Scope("the plans module", tuple(dict.fromkeys(fns))))
    return scopes


def _delta_path(label: str) -> list[str]:
    # "delta a / delta b" -> ["a", "b"]
    return [part.strip()[len("delta ") :] for part in label.split(" / ")]


@dataclass(frozen=True)
class TargetCollision:
    """Spec names that become one identifier in one scope, and every target where that happens."""

    scope: str
    names: tuple[tuple[str, str], ...]  # (kind, spec name)
    identifiers: tuple[tuple[Target, str], ...]  # (target, the identifier there)

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(t for t, _ in self.identifiers)


@dataclass(frozen=True)
class NameTables:
    """The result of :func:`name_targets`: per target, per scope, ``(kind, spec name) -> identifier``,
    and the collisions (each once, with every target it breaks)."""

    tables: Mapping[Target, Mapping[str, Mapping[tuple[str, str], str]]]
    collisions: tuple[TargetCollision, ...]

    def identifier(self, target: Target, scope: str, kind: str, name: str) -> str:
        return self.tables[target][scope][(normalise_kind(kind), name)]


def name_targets(plan: IRPlan, targets: Sequence[Target] = TARGETS) -> NameTables:
    """The pipeline's naming stage: every spec name's identifier in every target, computed once,
    and one collision report (a pair of names that collides in Rust and C++ is one collision
    naming both targets, not two)."""
    tables: dict[Target, dict[str, dict[tuple[str, str], str]]] = {}
    grouped: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[Target, str]]] = {}
    for target in targets:
        namer = Namer(target)
        per_scope: dict[str, dict[tuple[str, str], str]] = {}
        for sc in target_scopes(plan, target):
            table = per_scope.setdefault(sc.name, {})
            named = []
            for kind, name in sc.entries:
                ident = namer.name(kind, name, sc.reserved)
                table[(normalise_kind(kind), name)] = ident
                named.append((ident, kind, name))
            # the identifiers just computed, not find_collisions (which would name every entry again)
            for c in _collisions(target, sc.name, named, sc.taken):
                grouped.setdefault((c.scope, c.names), []).append((target, c.identifier))
        tables[target] = per_scope
    collisions = tuple(TargetCollision(scope, names, tuple(ids)) for (scope, names), ids in grouped.items())
    return NameTables(tables, collisions)


def report_collisions(
    names: NameTables, sink: DiagnosticSink, *, file: str = "<unknown>", spans: Mapping[str, Span] | None = None
) -> None:
    """One E0701 per collision, at the first colliding name whose declaration is known, listing
    every target it breaks."""
    for c in names.collisions:
        spec_names = [n for _, n in c.names]
        located = [n for n in spec_names if spans and n in spans]
        first = located[0] if located else spec_names[0]
        span = spans[first] if spans and first in spans else Span.unknown(file)
        listed = " and ".join(f"`{n}` ({k})" for k, n in c.names)
        where = f" in {c.scope}" if c.scope else ""
        targets = sorted(set(c.targets), key=TARGETS.index)
        ids = sorted({i for _, i in c.identifiers})
        written = " / ".join(f"`{i}`" for i in ids)
        notes = [note(f"they are written {written} in generated {', '.join(targets)} code{where}")]
        for other in spec_names:
            if other != first and spans and other in spans:
                notes.append(note(f"`{other}` is declared here", spans[other]))
        notes.append(note("rename one of them; names are compared after case conversion and escaping"))
        backends = targets[0] if len(targets) == 1 else ", ".join(targets[:-1]) + " and " + targets[-1]
        sink.error(
            ErrorCode.NAME_COLLISION,
            f"{listed} collide in the {backends} backend{'s' if len(targets) > 1 else ''} as {written}",
            span,
            *notes,
        )


def require_names(plan: IRPlan, target: Target) -> None:
    """Raise :class:`CatoptError` (E0701) when ``plan``'s names collide in ``target`` (the guard
    a backend runs when it is called without the pipeline having named the plan)."""
    names = name_targets(plan, (target,))
    if names.collisions:
        sink = DiagnosticSink()
        report_collisions(names, sink, file=plan.source)
        raise CatoptError(sink.sorted())
