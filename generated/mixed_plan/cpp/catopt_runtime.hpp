// catoptc's native runtime for C++17 (standard library only). `catoptc compile --target cpp`
// copies this file and catopt_runtime.cpp unchanged into every generated project: edit them here
// (native/cpp/ in the catoptc sources), never in a generated project. native/cpp/CMakeLists.txt
// builds and tests them on their own.
//
// rt: the plan-independent runtime (CRC32C, record and frame codecs, the ADMM coordinator). It
// mirrors catopt_dsl.wire, catopt_dsl.sync.frame and catopt_dsl.solver.coordinator.
//
// The runtime lives in `CATOPT_RT_NAMESPACE::rt`. catopt_runtime_config.hpp, which the generated
// project writes, names that namespace after the spec (`catopt_<spec>`), so several generated
// projects link into one program without clashing.

#ifndef CATOPT_RUNTIME_HPP
#define CATOPT_RUNTIME_HPP

#include "catopt_runtime_config.hpp"

#ifndef CATOPT_RT_NAMESPACE
#error "catopt_runtime_config.hpp must define CATOPT_RT_NAMESPACE"
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace CATOPT_RT_NAMESPACE {
namespace rt {

/// Why a record or frame was rejected: one value per Python WireError subclass, named (kind_name) as
/// the class is without "Error", so all three languages report one set of kinds (docs/protocol.md).
enum class WireErrorKind {
    Truncated,
    Checksum,
    BadMagic,
    Version,
    Length,
    TooLarge,
    Malformed,
    UnknownMessageType,
    SchemaMismatch,
    MissingField,
    Encode
};

const char* kind_name(WireErrorKind kind) noexcept;

/// Every codec error: decoders throw only this (never crash, never read out of bounds).
class WireError : public std::runtime_error {
public:
    WireError(WireErrorKind kind, const std::string& message);
    WireErrorKind kind() const noexcept { return kind_; }

private:
    WireErrorKind kind_;
};

/// Continue a CRC32C (Castagnoli) over data; start with crc = 0.
std::uint32_t crc32c_update(std::uint32_t crc, const std::uint8_t* data, std::size_t size) noexcept;
std::uint32_t crc32c(const std::uint8_t* data, std::size_t size) noexcept;

/// Bit-exact conversions for embedded data.
double f64_from_bits(std::uint64_t bits) noexcept;
std::uint64_t f64_to_bits(double value) noexcept;
std::vector<double> blob_f64(const std::uint64_t* bits, std::size_t count);

constexpr std::uint8_t DT_F64 = 1;
constexpr std::uint8_t DT_I64 = 2;
constexpr std::uint8_t DT_BOOL = 3;
constexpr std::uint8_t DT_UTF8 = 4;
/// The most dims an array may have (numpy's limit: no encoder writes more).
constexpr std::size_t MAX_NDIM = 64;
constexpr std::uint8_t RECORD_FORMAT_VERSION = 1;
constexpr std::size_t MIN_RECORD_SIZE = 18;

using Bytes = std::vector<std::uint8_t>;
using Dims = std::vector<std::uint32_t>;

/// Builds one schema record: header, fields in declaration order, CRC32C trailer.
class RecordWriter {
public:
    RecordWriter(const std::string& name, std::uint32_t version, std::uint16_t field_count);
    void f64s(std::uint16_t index, const Dims& dims, const std::vector<double>& data, const char* what);
    void i64s(std::uint16_t index, const Dims& dims, const std::vector<std::int64_t>& data, const char* what);
    void bools(std::uint16_t index, const Dims& dims, const std::vector<bool>& data, const char* what);
    Bytes finish();

private:
    void field_header(std::uint16_t index, std::uint8_t code, const Dims& dims, std::size_t count, const char* what);
    Bytes buf_;
};

/// A parsed record (structure, CRC and schema name checked); fields decoded on request.
class RecordView {
public:
    std::string name;
    std::uint32_t version = 0;
    /// Each returns false when the writer did not send field `index`; throws on a mismatch.
    bool f64s(std::uint16_t index, const Dims& dims, const char* what, std::vector<double>& out) const;
    bool i64s(std::uint16_t index, const Dims& dims, const char* what, std::vector<std::int64_t>& out) const;
    bool bools(std::uint16_t index, const Dims& dims, const char* what, std::vector<bool>& out) const;

    struct Raw {
        std::uint16_t index;
        std::uint8_t code;
        Dims dims;
        const std::uint8_t* data;
        std::size_t size;
    };
    std::vector<Raw> fields;

private:
    const Raw* raw(std::uint16_t index, std::uint8_t code, const Dims& dims, const char* what) const;
};

/// Parse a record for a reader of schema `schema_name` version `schema_version` that knows `known`
/// fields; the checks and their order follow catopt_dsl.wire.record.decode_record.
RecordView parse_record(const std::uint8_t* data, std::size_t size, const std::string& schema_name,
                        std::uint32_t schema_version, std::size_t known);

/// Throw MissingField for a required field the record lacks.
[[noreturn]] void missing(const char* what);

// -- frames ("CATF") --------------------------------------------------------------------------
constexpr std::uint8_t PROTOCOL_VERSION = 1;
constexpr std::size_t FRAME_HEADER_SIZE = 80;
constexpr std::uint8_t MAX_MSG_TYPE = 7;
constexpr std::size_t DEFAULT_MAX_PAYLOAD = 256u * 1024u * 1024u;

struct FrameHeader {
    std::uint8_t msg_type = 0;
    std::array<std::uint8_t, 32> spec_hash{};
    std::uint32_t schema_id = 0;
    std::uint32_t schema_version = 0;
    std::uint32_t sender = 0;
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t round = 0;
    bool operator==(const FrameHeader& o) const;
};

/// One payload entry: a named array (dtype code, dims, raw little-endian data).
struct FrameEntry {
    std::string name;
    std::uint8_t code = DT_F64;
    Dims dims;
    Bytes data;
    static FrameEntry f64s(const std::string& name, const Dims& dims, const std::vector<double>& values);
    std::vector<double> as_f64s() const;
    bool operator==(const FrameEntry& o) const;
};

struct Frame {
    FrameHeader header;
    std::vector<FrameEntry> entries;
    /// Canonical bytes: entries sorted by name, zero padding to 8-byte aligned data.
    Bytes encode() const;
    static Frame decode(const std::uint8_t* data, std::size_t size, std::size_t max_payload = DEFAULT_MAX_PAYLOAD);
};

// -- plan structure ---------------------------------------------------------------------------
enum class Sense { Le, Ge, Eq };
enum class TermKind { Free, SumSquares, Norm1 };

/// The closed-form global term of one shared var.
struct SharedTerm {
    TermKind kind = TermKind::Free;
    double coef = 0.0;
};

struct SharedVarSpec {
    std::string name;
    std::size_t offset = 0;
    std::size_t size = 0;
    SharedTerm term;
};

struct SharedSpec {
    std::string name;
    std::size_t n = 0;
    std::vector<SharedVarSpec> vars;
    bool closed_form = true;
};

enum class BlockKind { Consensus, Coupling };

/// One row block: a consensus link x[x_offset..+size] == z[shared][var], or a coupling term
/// B x + b (B row-major, rows x n).
struct Block {
    BlockKind kind = BlockKind::Consensus;
    std::size_t shared = 0, var = 0, x_offset = 0, size = 0;
    std::size_t coupling = 0, rows = 0;
    std::vector<double> b_mat, b_vec;
    static Block consensus(std::size_t shared, std::size_t var, std::size_t x_offset, std::size_t size);
    static Block coupling_term(std::size_t coupling, std::size_t rows, std::vector<double> b_mat,
                               std::vector<double> b_vec);
    std::size_t row_count() const { return kind == BlockKind::Consensus ? size : rows; }
};

struct ObjectSpec {
    std::string name;
    std::size_t n = 0;
    std::vector<Block> blocks;
    std::size_t rows() const;
    /// M x + e
    std::vector<double> apply(const std::vector<double>& x) const;
    /// M' y
    std::vector<double> apply_t(const std::vector<double>& y) const;
    /// dense M (row-major) and e
    void dense(std::vector<double>& m, std::vector<double>& e) const;
};

/// An object's row map M x + e as compressed rows: the nonzeros of its blocks in row order, built
/// once. The per-iteration products use it (no allocation, and the zeros of a dense coupling
/// block -- an identity, say -- cost nothing); they add in the order ObjectSpec's would.
struct RowMap {
    RowMap() = default;
    explicit RowMap(const ObjectSpec& object);
    /// A (rows x n, row-major) as compressed rows, e zero; no rows when a has the wrong size.
    static RowMap from_dense(const std::vector<double>& a, std::size_t rows, std::size_t n);
    std::size_t rows() const noexcept { return e.size(); }
    /// out = M x + e (rows() values).
    void apply_into(const double* x, double* out) const;
    /// out = M' y (n values).
    void apply_t_into(const double* y, double* out) const;
    /// Whether every row picks one column with weight 1 and no column twice (sets `selection`).
    bool is_selection() const;

    std::size_t n = 0;
    std::vector<std::size_t> start, col;  // row k's entries: start[k] .. start[k + 1]
    std::vector<double> val, e;
    /// Every row picks one column with weight 1 and no column twice (consensus links, identity
    /// couplings): then max_j |(M' y)_j| is max_k |y_k|, no product needed.
    bool selection = true;
};

struct CouplingSpec {
    std::string name;
    Sense sense = Sense::Le;
    std::vector<double> rhs;
};

struct PlanSpec {
    std::string name;
    std::vector<SharedSpec> shared;
    std::vector<ObjectSpec> objects;
    std::vector<CouplingSpec> couplings;
};

// -- solving ----------------------------------------------------------------------------------
enum class Status { Optimal, Infeasible, Unbounded, MaxIterations, LocalSolverFailed };
const char* status_name(Status status) noexcept;

/// Thrown by a LocalSolver / SharedProx that cannot produce a point.
class StepError : public std::runtime_error {
public:
    StepError(Status status, const std::string& message);
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

/// The x-update an object must provide:
/// x = argmin f(x) + rho/2 ||M x - centre||^2 subject to the object's constraints.
class LocalSolver {
public:
    virtual ~LocalSolver() = default;
    virtual std::vector<double> prox(const std::vector<double>& centre, double rho) = 0;
    /// The same x-update written into x (resized as needed; its old values mean nothing). The
    /// coordinator calls this one; the default calls prox. A solver that keeps its buffers (the generated QP
    /// solver) overrides it so that a settled iteration allocates nothing.
    virtual void prox_into(const std::vector<double>& centre, double rho, std::vector<double>& x) {
        x = prox(centre, rho);
    }
    /// f(x) in minimise form.
    virtual double objective(const std::vector<double>& x) const = 0;
};

/// A user z-update for a shared block without a closed form.
class SharedProx {
public:
    virtual ~SharedProx() = default;
    virtual std::vector<double> prox(const std::vector<std::vector<double>>& means,
                                     const std::vector<std::size_t>& counts, double rho,
                                     const std::vector<double>& z_prev) = 0;
    virtual double value(const std::vector<double>& z) const = 0;
};

/// Solve a x = b (row-major n x n) by Gaussian elimination with partial pivoting; false if singular.
bool dense_solve(std::vector<double> a, std::vector<double> b, std::size_t n, std::vector<double>& x);

/// Closed-form prox of f(x) = 1/2 x'Px + q'x + c (no constraints).
class QuadraticSolver : public LocalSolver {
public:
    QuadraticSolver(const ObjectSpec& object, std::vector<double> p, std::vector<double> q, double c);
    std::vector<double> prox(const std::vector<double>& centre, double rho) override;
    double objective(const std::vector<double>& x) const override;

private:
    ObjectSpec object_;
    std::vector<double> p_, q_, mtm_;
    double c_;
};

/// A local QP: f(x) = 1/2 x'Px + q'x + r subject to l <= A x <= u (P row-major n x n, A row-major
/// m x n). Equality rows have l == u, one-sided rows an infinite bound: the equalities, the bounds
/// and the general inequalities of the object's IR analysis.
struct QpData {
    std::vector<double> p, q;
    double r = 0.0;
    std::vector<double> a, l, u;
    std::size_t rows() const { return l.size(); }
};

/// A dense LU factorisation with partial pivoting (factor once, solve many right-hand sides).
class Lu {
public:
    /// False when a pivot is zero to rounding (relative to the largest entry).
    bool factor(std::vector<double> a, std::size_t n);
    /// The same from a (n x n row-major, left unchanged), reusing this factor's storage.
    bool factor_from(const double* a, std::size_t n);
    std::vector<double> solve(const std::vector<double>& b) const;
    /// The same into x (n values; b and x must not overlap).
    void solve_into(const double* b, double* x) const;
    /// The inverse (row-major n x n) into inv. A step that reuses a factor many times multiplies
    /// by the inverse instead of two triangular solves (independent dot products instead of a
    /// chain of dependent rows and divisions).
    void invert_into(std::vector<double>& inv);

private:
    std::size_t n_ = 0;
    std::vector<double> a_;
    std::vector<std::size_t> perm_;
};

/// Inner iterations before a QP prox step gives up (a step never hangs).
constexpr std::size_t QP_MAX_ITER = 20000;
/// Active-set corrections a QP prox step tries before its inner ADMM: each one adds the rows the
/// failed KKT solve violates and drops the multipliers of the wrong sign (a primal-dual active-set
/// step), which settles a changed active set in one or two solves where ADMM takes dozens.
constexpr std::size_t QP_GUESS_STEPS = 4;

/// The x-update of a local QP: argmin f(x) + rho/2 ||M x - centre||^2 over l <= A x <= u.
///
/// Exact: the step is the KKT solution of an active set, accepted only when every inactive row
/// is within its bounds and every multiplier has the right sign. The guess is the previous step's
/// active set (near convergence a step is one product with a cached inverse), then up to
/// QP_GUESS_STEPS corrections of it; when those fail, OSQP's ADMM, warm-started from the previous x, z and y, finds the
/// active set, and its certificates prove a local constraint set empty (Infeasible) or the local problem unbounded
/// below. Matrices are factorised once per rho (and active set); a settled step allocates nothing. Throws StepError.
class QpSolver : public LocalSolver {
public:
    QpSolver(const ObjectSpec& object, QpData data);
    std::vector<double> prox(const std::vector<double>& centre, double rho) override;
    void prox_into(const std::vector<double>& centre, double rho, std::vector<double>& x) override;
    double objective(const std::vector<double>& x) const override;
    /// prox_into for the coordinator's own loop: the centre as map rows (object.rows() values)
    /// and the object's rows M x + e written to `rows` (object.rows() values).
    void step(const double* centre, double rho, std::vector<double>& x, double* rows);
    const QpData& data() const noexcept { return data_; }
    /// Each coordinate's bounds (-inf/inf where none) when every constraint row bounds one
    /// coordinate (no rows counts); false for general rows. The support of such a set along c is
    /// sum_j c_j (c_j > 0 ? lo_j : hi_j).
    bool coordinate_bounds(std::vector<double>& lo, std::vector<double>& hi) const;
    /// Inner ADMM iterations over all steps (the exact active-set solves not counted).
    std::size_t inner_iterations = 0;

private:
    void check();
    void set_rho(double rho);
    /// The KKT point of the active set `act` for this centre (p_ must hold the prox's linear term
    /// when the QP has rows: their tolerances scale with it).
    bool polish(const double* centre, const std::vector<signed char>& act, std::vector<double>& x);
    void compute_p(const double* centre, double rho);
    /// The separable step from the centre directly when M is the identity (x_j = clip(-(q_j -
    /// rho c_j) / Q_jj)); false when not applicable or not finite.
    bool direct_step(const double* centre, double rho, std::vector<double>& x);
    void prox_step(const double* centre, double rho, std::vector<double>& x);
    /// After separable steps (which keep only x_): a warm start for a step that is not separable.
    void settle_separable_state();
    bool next_active_set(std::vector<signed char>& act) const;
    bool separable_step(std::vector<double>& x);
    double rho_row(std::size_t i) const;
    bool admm_factor();
    std::vector<double> admm_solve(const double* centre, const std::vector<double>& p);
    bool primal_infeasible(const std::vector<double>& dy) const;
    bool dual_infeasible(const std::vector<double>& dx, const std::vector<double>& p) const;
    [[noreturn]] void fail(Status status, const std::string& what) const;

    ObjectSpec object_;
    RowMap map_;
    QpData data_;
    RowMap a_rows_, p_rows_;  // A and P as compressed rows (e unused)
    std::size_t n_, m_;
    std::vector<double> mtm_, qmat_;
    double rho_;
    std::vector<bool> eq_;
    std::vector<double> x_, z_, y_;
    std::vector<signed char> active_;
    bool has_kkt_ = false;
    std::vector<signed char> kkt_active_;
    Lu kkt_;
    std::vector<double> kkt_buf_, kkt_inv_, kkt_bound_, chol_;
    // The cached KKT point as an affine map of the prox centre c (fixed while rho and the active
    // set are): sol = aff_c0_ + G c, G stored column by column (aff_g_[c * k + i]), so a settled
    // step is k x r multiply-adds over contiguous columns and needs neither p nor M'c.
    std::vector<double> aff_c0_, aff_g_;
    // What the last polish left: whether its KKT solve produced a point (sol_, ax_) and the
    // tolerances it judged that point by (for next_active_set).
    bool polish_solved_ = false;
    double tol_p_ = 0.0, tol_d_ = 0.0;
    std::vector<signed char> act_try_;
    bool checked_ = false;
    // P and M'M diagonal and A one coordinate per row (separable_), and every Q_jj > 0 at this
    // rho (separable_now_): the step is separable_step's closed form.
    bool separable_ = false, separable_now_ = false;
    // 1 / Q_jj at this rho (separable_now_), and whether z_, y_ and active_ lag behind x_ (a
    // separable step updates only x_; settle_separable_state catches them up when needed).
    std::vector<double> sep_inv_;
    bool sep_stale_ = false;
    // M is the identity (the centre is x's own coordinates) and each coordinate's bounds
    // (-inf/inf where no row bounds it): direct_step's data.
    bool identity_map_ = false;
    std::vector<double> sep_lo_, sep_hi_;
    bool has_admm_ = false;
    double admm_rho_ = 0.0;
    Lu admm_;
    double rho_in_;
    // scratch of a step (no allocation once warm)
    std::vector<std::size_t> w_;
    std::vector<double> p_, sol_, ax_;
};

/// ADMM settings (the defaults of catopt_dsl.solver.SolveOptions).
struct Options {
    std::size_t max_iter = 10000;
    double eps_abs = 1e-5;
    double eps_rel = 1e-5;
    double rho = 1.0;
    double alpha = 1.6;
    bool adaptive_rho = true;
    std::size_t adaptive_rho_interval = 10;
    /// How often (iterations) a settled dual increment is tried as a certificate that the plan's
    /// links cannot all hold (0: never); the reference's default.
    std::size_t infeasibility_check_interval = 25;
};

struct Iterate {
    std::size_t iteration = 0;
    double rho = 0, r_prim = 0, r_dual = 0, eps_prim = 0, eps_dual = 0, objective = 0;
    bool converged = false, rho_changed = false;
};

struct SolveResult {
    Status status = Status::MaxIterations;
    bool has_objective = false;
    double objective = 0.0;
    std::size_t iterations = 0;
    bool has_residuals = false;
    double primal_residual = 0.0, dual_residual = 0.0;
    std::vector<std::vector<double>> x, z;
    double rho = 0.0;
    std::string message;
};

/// Holds z, the coupling copies y, the scaled duals u and rho; decides stopping.
class Coordinator {
public:
    Coordinator(PlanSpec plan, Options opts);
    void set_shared_prox(std::size_t block, std::shared_ptr<SharedProx> prox);
    std::vector<std::vector<double>> centres() const;
    /// One iteration from every object's x and local objective (plan order). Throws StepError.
    Iterate update(const std::vector<std::vector<double>>& xs, const std::vector<double>& objectives);
    /// Run to a status with one solver per object (plan order).
    SolveResult solve(const std::vector<std::shared_ptr<LocalSolver>>& solvers);
    /// g(z) of every shared block at the current z (the shared part of the plan objective).
    double shared_value() const;

    PlanSpec plan;
    Options opts;
    double rho;
    std::vector<double> t, u;
    std::vector<std::vector<double>> z;
    std::size_t iteration = 0;
    bool has_last = false;
    Iterate last;

private:
    /// update() with the local objectives either given (`objectives`) or, when null, asked of
    /// `solvers` only where the stopping test needs them (see advance's comment).
    Iterate advance(const std::vector<std::vector<double>>& xs, const std::vector<double>* objectives,
                    const std::vector<std::shared_ptr<LocalSolver>>* solvers);
    /// The sum of the local objectives at xs; throws StepError naming an object whose value is
    /// not finite.
    double local_objectives(const std::vector<std::vector<double>>& xs,
                            const std::vector<std::shared_ptr<LocalSolver>>& solvers) const;
    void sync_consensus_targets();
    /// Whether iteration k is an adaptive-rho checkpoint.
    bool checkpoint(std::size_t k) const;
    void centres_into(std::vector<std::vector<double>>& out) const;
    /// max |rho (M' v1)_j| and max |rho (M' v2)_j| over every object's columns, in one pass and
    /// without allocating.
    void mt_max_abs(const std::vector<double>& v1, const std::vector<double>& v2, double rho_now, double& m1,
                    double& m2);
    double g_value(std::size_t s) const;
    void z_update(std::size_t s, const std::vector<double>& v, double rho_now);
    SolveResult result(Status status, bool has_objective, double objective, std::size_t iterations,
                       std::vector<std::vector<double>> x, std::string message) const;
    std::vector<std::size_t> object_rows_;
    std::vector<RowMap> maps_;
    bool all_selection_ = true;  // every object's RowMap is a selection
    std::vector<std::vector<double>> e_;
    std::vector<std::vector<std::vector<std::size_t>>> consensus_index_;
    std::vector<std::vector<std::size_t>> term_index_;
    std::vector<std::shared_ptr<SharedProx>> proxes_;
    std::size_t total_rows_ = 0;
    // The previous iteration's rows a and multiplier estimate yhat (the curvature secant), kept
    // when this iteration is a checkpoint.
    bool has_secant_ = false;
    std::vector<double> secant_a_, secant_y_;
    // Scratch of update(), sized once: an iteration allocates nothing (the buffers are swapped
    // or overwritten, never regrown).
    std::vector<double> a_, t_old_, yhat_, h_, v_, dt_, col_buf_, cp_sum_, cp_shift_;
    std::vector<std::vector<std::vector<double>>> means_;
    std::vector<std::vector<std::size_t>> counts_;
    // 1.0 on coupling rows (the gap sum's weights); whether there are any; per coupling, whether
    // its terms' rows are one block term after term (the stride loops of advance).
    std::vector<double> coupling_mask_;
    bool has_coupling_rows_ = false;
    std::vector<char> cp_stride_;
    // Per object, set by solve(): its solver is the generated QpSolver, whose every step checks
    // its own point is finite (the coordinator's check of x is skipped for it).
    std::vector<char> verified_;
    // Every object's e_i end to end (row order), and the prox centres t - u - e of every row,
    // kept by the row pass (the coordinator's loop hands each QpSolver its slice).
    std::vector<double> e_flat_, centre_flat_;
    /// Iterate from the rows a_ (already M x + e for every object).
    Iterate advance_rows(const std::vector<std::vector<double>>& xs, const std::vector<double>* objectives,
                         const std::vector<std::shared_ptr<LocalSolver>>* solvers);
    void centres_flat();
    /// The plan-level Farkas certificate (see certify_infeasible in the .cpp): the dual
    /// increments of the two latest recorded iterations, and when to try next.
    void record_dual_increment(double rho_used, bool rho_changed);
    bool certify_infeasible(const std::vector<QpSolver*>& fast, std::string& message);
    std::vector<double> dy_last_, dy_prev_;
    bool has_dy_last_ = false, has_dy_prev_ = false;
    std::size_t cert_next_try_ = 0, cert_failures_ = 0;
};

/// The objects that need a user LocalSolver (not QPs) and got none.
class MissingSolvers : public std::runtime_error {
public:
    explicit MissingSolvers(std::vector<std::string> objects);
    const std::vector<std::string>& objects() const noexcept { return objects_; }

private:
    std::vector<std::string> objects_;
};

/// One solver per object: the generated QP solver where local[i] holds QP data, else user[i]
/// (which overrides a QP too). Throws MissingSolvers naming every object left without one.
std::vector<std::shared_ptr<LocalSolver>> local_solvers(const PlanSpec& plan,
                                                        const std::vector<std::optional<QpData>>& local,
                                                        std::vector<std::shared_ptr<LocalSolver>> user = {});

/// One variable of the report: its name, offset in the stacked vector and shape.
struct VarInfo {
    std::string name;
    std::size_t offset = 0;
    std::vector<std::size_t> shape;
};

/// What `catoptc solve --json` reports, in its order: objects (plan index, vars sorted by name) in
/// natural order, and the shared blocks the plan reports.
struct ReportSpec {
    std::vector<std::pair<std::size_t, std::vector<VarInfo>>> objects, shared;
};

/// A finished native solve: the coordinator's result, the glued point and its objective.
struct PlanSolution {
    SolveResult result;
    /// Every object's x with consensus-linked entries set to their shared value.
    std::vector<std::vector<double>> x;
    /// The plan objective at the glued point (unset unless optimal or max_iterations).
    std::optional<double> objective;
    double seconds = 0.0;
    /// The `catoptc solve --json` object (keys sorted).
    [[nodiscard]] std::string to_json(const PlanSpec& plan, const ReportSpec& report) const;
};

/// Every object's x with its consensus-linked entries replaced by the shared value.
[[nodiscard]] std::vector<std::vector<double>> glue(const PlanSpec& plan, const std::vector<std::vector<double>>& x,
                                                    const std::vector<std::vector<double>>& z);

/// Run ADMM on `plan` with one solver per object; the result glued as `catoptc solve` reports it.
[[nodiscard]] PlanSolution solve_plan(const PlanSpec& plan, const std::vector<std::shared_ptr<LocalSolver>>& solvers,
                                      const Options& opts);

/// A JSON string literal / number (null for NaN and infinities).
std::string json_str(const std::string& text);
std::string json_f64(double v);

}  // namespace rt
}  // namespace CATOPT_RT_NAMESPACE

#endif  // CATOPT_RUNTIME_HPP
