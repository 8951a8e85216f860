"""Every diagnostic code catoptc can emit, in one place.

`docs/errors.md` documents each code with a failing example; `tests/test_error_codes.py` checks that
every code here is documented there and exercised by a case under `tests/cases/bad/`.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    # -- input and syntax ---------------------------------------------------------------------
    SYNTAX = "E0001"  # unexpected token / malformed construct
    LEX = "E0002"  # a character no token starts with
    ENCODING = "E0003"  # not UTF-8 text, or binary input
    TOO_DEEP = "E0004"  # nesting beyond the parser's limit
    UNREADABLE = "E0005"  # file missing, a directory, too large, unreadable
    VERSION = "E0006"  # `catopt N;` header missing or a version this catoptc does not speak
    LIMIT = "E0007"  # a resource limit of catopt_dsl/limits.py exceeded (sizes, counts, lengths)
    # -- names ------------------------------------------------------------------------------------
    UNKNOWN_NAME = "E0101"
    DUPLICATE = "E0102"
    IMPORT_CYCLE = "E0103"
    IMPORT_NOT_FOUND = "E0104"
    UNKNOWN_ATOM = "E0105"
    ARITY = "E0106"
    WRONG_KIND = "E0107"  # a name of the wrong kind (a var where a param is needed, ...)
    IMPORT_OUTSIDE = "E0108"  # an import that resolves outside the spec's folder and --allow-path folders
    # -- shapes and types ---------------------------------------------------------------------
    SHAPE = "E0201"  # elementwise / broadcasting mismatch
    MATMUL_SHAPE = "E0202"
    TYPE = "E0203"  # int / float / bool mismatch
    INDEX = "E0204"  # index or slice out of range, or too many indices
    VALUE_SHAPE = "E0205"  # literal value does not match the declared shape
    RANGE = "E0206"  # empty or reversed family range
    NOT_SCALAR = "E0207"  # objective (or a scalar-only position) is not a scalar
    # -- convexity --------------------------------------------------------------------------------
    NOT_CONVEX_OBJECTIVE = "E0301"
    NOT_DCP_CONSTRAINT = "E0302"
    NOT_AFFINE = "E0303"  # an affine expression is required (morphism fields, functor rules)
    # -- schemas and morphisms --------------------------------------------------------------------
    UNKNOWN_SCHEMA = "E0401"
    MISSING_FIELD = "E0402"
    UNKNOWN_FIELD = "E0403"
    FIELD_MISMATCH = "E0404"
    MORPHISM_ENDPOINT = "E0405"
    SCHEMA_EVOLUTION = "E0406"  # a new version removes or retypes a field, or appends one without a default
    # -- limits, colimits, functors, deltas -------------------------------------------------------
    CONSENSUS = "E0501"
    COUPLING = "E0502"
    COLIMIT = "E0503"
    FUNCTOR = "E0504"
    DELTA = "E0505"
    NO_OBJECTIVE = "E0506"  # a LocalProblem with no variables or no objective
    UNUSED_PARAM = "E0507"  # warning: a param nothing reads
    FREE_VAR = "E0508"  # warning: a variable nothing constrains or prices
    # -- data -------------------------------------------------------------------------------------
    LOAD_MISSING = "E0601"
    LOAD_UNREADABLE = "E0602"
    LOAD_SHAPE = "E0603"
    LOAD_NONFINITE = "E0604"
    LOAD_OUTSIDE = "E0605"
    # -- codegen ----------------------------------------------------------------------------------
    NAME_COLLISION = "E0701"  # two names collide in a target after case conversion and escaping
    # -- schema registry (`--registry`) ---------------------------------------------------------
    REGISTRY_INCOMPATIBLE = "E0801"  # a schema breaks its registry subject's compatibility mode
    REGISTRY_MISMATCH = "E0802"  # the registry holds this schema version with other content, or deleted it
    REGISTRY_UNREGISTERED = "E0803"  # warning: the registry has no version of this schema's subject
    REGISTRY_SEQUENCE = "E0804"  # a schema's declared version is not its subject's next registry version
    # -- adapters (`via`, external losses) -------------------------------------------------------
    ADAPTER = "E0901"  # `via NAME [>= version]` names no installed adapter, or one that does not satisfy it
    EXTERNAL_LOSS = "E0902"  # an external loss that does not resolve, does not fit the vars, or is misused
    HEURISTIC = "E0903"  # warning: an external loss not known to be convex (ADMM is then a heuristic)
    # -- identities -------------------------------------------------------------------------------
    OWNER = "E0904"  # an `owner` that is not an Ed25519 did:key, or an object left without one


TITLES: dict[ErrorCode, str] = {
    ErrorCode.SYNTAX: "syntax error",
    ErrorCode.LEX: "unexpected character",
    ErrorCode.ENCODING: "input is not UTF-8 text",
    ErrorCode.TOO_DEEP: "nesting too deep",
    ErrorCode.UNREADABLE: "cannot read input file",
    ErrorCode.VERSION: "missing or unsupported language version",
    ErrorCode.LIMIT: "resource limit exceeded",
    ErrorCode.UNKNOWN_NAME: "unknown name",
    ErrorCode.DUPLICATE: "duplicate definition",
    ErrorCode.IMPORT_CYCLE: "import cycle",
    ErrorCode.IMPORT_NOT_FOUND: "imported file not found",
    ErrorCode.UNKNOWN_ATOM: "unknown function",
    ErrorCode.ARITY: "wrong number of arguments",
    ErrorCode.WRONG_KIND: "name of the wrong kind",
    ErrorCode.IMPORT_OUTSIDE: "import outside the allowed folders",
    ErrorCode.SHAPE: "shape mismatch",
    ErrorCode.MATMUL_SHAPE: "matrix product shape mismatch",
    ErrorCode.TYPE: "type mismatch",
    ErrorCode.INDEX: "index out of range",
    ErrorCode.VALUE_SHAPE: "value does not match declared shape",
    ErrorCode.RANGE: "empty or reversed range",
    ErrorCode.NOT_SCALAR: "expression must be scalar",
    ErrorCode.NOT_CONVEX_OBJECTIVE: "objective breaks convexity (DCP)",
    ErrorCode.NOT_DCP_CONSTRAINT: "constraint breaks convexity (DCP)",
    ErrorCode.NOT_AFFINE: "affine expression required",
    ErrorCode.UNKNOWN_SCHEMA: "unknown schema or schema version",
    ErrorCode.MISSING_FIELD: "schema field not filled",
    ErrorCode.UNKNOWN_FIELD: "field not in schema",
    ErrorCode.FIELD_MISMATCH: "field type or shape mismatch",
    ErrorCode.MORPHISM_ENDPOINT: "invalid morphism endpoint",
    ErrorCode.SCHEMA_EVOLUTION: "incompatible schema evolution",
    ErrorCode.CONSENSUS: "invalid consensus limit",
    ErrorCode.COUPLING: "invalid coupling limit",
    ErrorCode.COLIMIT: "invalid colimit",
    ErrorCode.FUNCTOR: "invalid functor",
    ErrorCode.DELTA: "invalid plan delta",
    ErrorCode.NO_OBJECTIVE: "local problem without variables or objective",
    ErrorCode.UNUSED_PARAM: "unused param",
    ErrorCode.FREE_VAR: "variable that nothing constrains",
    ErrorCode.LOAD_MISSING: "data file not found",
    ErrorCode.LOAD_UNREADABLE: "data file unreadable",
    ErrorCode.LOAD_SHAPE: "data shape mismatch",
    ErrorCode.LOAD_NONFINITE: "data contains NaN or Inf",
    ErrorCode.LOAD_OUTSIDE: "data path outside the allowed folders",
    ErrorCode.NAME_COLLISION: "generated names collide",
    ErrorCode.REGISTRY_INCOMPATIBLE: "schema incompatible with the registry",
    ErrorCode.REGISTRY_MISMATCH: "schema differs from the registry",
    ErrorCode.REGISTRY_UNREGISTERED: "schema not in the registry",
    ErrorCode.REGISTRY_SEQUENCE: "schema version out of sequence",
    ErrorCode.ADAPTER: "unknown or unsatisfiable adapter",
    ErrorCode.EXTERNAL_LOSS: "invalid external loss",
    ErrorCode.HEURISTIC: "loss not known to be convex",
    ErrorCode.OWNER: "invalid or missing owner",
}
