// Tests of the runtime on its own (no plan): CRC32C, the record and frame codecs, and the
// coordinator on small hand-written plans whose optimum is known in closed form.

#include <cstdio>
#include <functional>
#include <limits>

#include "catopt_runtime.hpp"

namespace {

namespace rt = ::catopt_runtime_test::rt;

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        ++failures;
        std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    }
}

using Decode = std::function<void(const std::uint8_t*, std::size_t)>;

/// The kind of error `decode` throws for `bytes`: "ok", a kind name, or "crash" for anything
/// but rt::WireError.
std::string outcome(const rt::Bytes& bytes, const Decode& decode) {
    try {
        decode(bytes.data(), bytes.size());
    } catch (const rt::WireError& e) {
        return rt::kind_name(e.kind());
    } catch (...) {
        return "crash";
    }
    return "ok";
}

/// Every truncation, every single-bit flip and one extra byte must throw rt::WireError.
void check_rejects_damage(const rt::Bytes& bytes, const Decode& decode, const std::string& what) {
    auto rejected = [&](const rt::Bytes& b) {
        const std::string r = outcome(b, decode);
        return r != "ok" && r != "crash";
    };
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        const rt::Bytes head(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
        check(rejected(head), what + ": cut at " + std::to_string(cut));
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            rt::Bytes damaged = bytes;
            damaged[i] = static_cast<std::uint8_t>(damaged[i] ^ (1u << bit));
            check(rejected(damaged), what + ": flip in byte " + std::to_string(i));
        }
    }
    rt::Bytes longer = bytes;
    longer.push_back(0);
    check(rejected(longer), what + ": trailing byte");
}

void test_crc() {
    const std::string s = "123456789";
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
    check(rt::crc32c(p, s.size()) == 0xE3069283u, "crc32c check value");
    check(rt::crc32c_update(rt::crc32c(p, 4), p + 4, 5) == 0xE3069283u, "crc32c incremental");
    check(rt::crc32c(p, 0) == 0u, "crc32c of nothing");
}

// -- records ------------------------------------------------------------------------------------

/// A record of schema "S" v2: f (f64 scalar), ia (i64 [2]), b (bool [3]).
rt::Bytes sample_record() {
    rt::RecordWriter w("S", 2, 3);
    w.f64s(0, {}, {-0.0}, "S.f");
    w.i64s(1, {2}, {std::numeric_limits<std::int64_t>::min(), 7}, "S.ia");
    w.bools(2, {3}, {true, false, true}, "S.b");
    return w.finish();
}

void test_records() {
    const rt::Bytes bytes = sample_record();
    const rt::RecordView rec = rt::parse_record(bytes.data(), bytes.size(), "S", 2, 3);
    check(rec.name == "S" && rec.version == 2, "record header");
    std::vector<double> f;
    check(rec.f64s(0, {}, "S.f", f) && f.size() == 1 && rt::f64_to_bits(f[0]) == rt::f64_to_bits(-0.0), "float field");
    std::vector<std::int64_t> ia;
    check(rec.i64s(1, {2}, "S.ia", ia) && ia == std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 7},
          "int field");
    std::vector<bool> b;
    check(rec.bools(2, {3}, "S.b", b) && b == std::vector<bool>{true, false, true}, "bool field");
    check_rejects_damage(
        bytes, [](const std::uint8_t* d, std::size_t n) { rt::parse_record(d, n, "S", 2, 3); }, "record");

    std::vector<double> wrong;
    check(
        outcome(bytes, [&](const std::uint8_t*, std::size_t) { rec.f64s(1, {2}, "S.ia", wrong); }) == "SchemaMismatch",
        "dtype mismatch");
    check(outcome(bytes, [](const std::uint8_t* d, std::size_t n) { rt::parse_record(d, n, "T", 2, 3); }) ==
              "SchemaMismatch",
          "another schema's record");
    check(outcome(bytes, [](const std::uint8_t*, std::size_t) { rt::missing("S.g"); }) == "MissingField",
          "missing field");
    const rt::RecordView older = rt::parse_record(bytes.data(), bytes.size(), "S", 1, 1);
    check(!older.i64s(1, {2}, "S.ia", ia), "appended fields are skipped by an older reader");
    check(outcome(bytes,
                  [](const std::uint8_t*, std::size_t) {
                      rt::RecordWriter w("S", 1, 1);
                      w.f64s(0, {3}, {1.0, 2.0}, "S.f");
                  }) == "Encode",
          "writer refuses a value that does not fit the shape");
}

/// `bytes` with its CRC32C trailer recomputed (so that a change reaches the checks behind it).
rt::Bytes recrc(rt::Bytes bytes) {
    const std::size_t n = bytes.size() - 4;
    const std::uint32_t crc = rt::crc32c(bytes.data(), n);
    for (int k = 0; k < 4; ++k) bytes[n + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(crc >> (8 * k));
    return bytes;
}

/// The outcome of parsing `bytes` as a record of "S" version `version` with `known` fields.
std::string parse_as(const rt::Bytes& bytes, std::uint32_t version, std::size_t known) {
    return outcome(bytes, [&](const std::uint8_t* d, std::size_t n) { rt::parse_record(d, n, "S", version, known); });
}

void test_non_canonical_records() {
    const rt::Bytes bytes = sample_record();
    // a field count the reader's own version cannot have: this v2 record holds three fields;
    // other versions may have more or fewer (defaults fill, unknown fields are skipped)
    check(parse_as(bytes, 2, 4) == "SchemaMismatch", "same version, more fields");
    check(parse_as(bytes, 2, 2) == "SchemaMismatch", "same version, fewer fields");
    check(parse_as(bytes, 3, 2) == "ok" && parse_as(bytes, 1, 4) == "ok", "a field dropped by a later version");
    check(parse_as(bytes, 3, 4) == "ok" && parse_as(bytes, 1, 2) == "ok", "other versions");
    rt::Bytes renumbered = bytes;
    renumbered[8 + 1 + 6] = 1;  // field 0 renumbered: fields are 0, 1, 2 in order
    check(parse_as(recrc(renumbered), 2, 3) == "Malformed", "fields out of order");
    rt::Bytes bool2 = bytes;
    bool2[bool2.size() - 5] = 2;  // in a field a v1 reader skips: still malformed
    check(parse_as(recrc(bool2), 1, 1) == "Malformed", "bool byte 2 in a skipped field");
}

// -- frames -------------------------------------------------------------------------------------

rt::Frame sample_frame() {
    rt::Frame f;
    f.header.msg_type = 3;
    f.header.spec_hash.fill(7);
    f.header.schema_id = 1;
    f.header.schema_version = 2;
    f.header.sender = 9;
    f.header.epoch = 4;
    f.header.seq = 5;
    f.header.round = 6;
    f.entries.push_back(rt::FrameEntry::f64s("z", {2}, {1.5, -0.0}));
    f.entries.push_back(rt::FrameEntry::f64s("$rho", {}, {2.0}));
    return f;
}

void test_frames() {
    const rt::Frame f = sample_frame();
    const rt::Bytes bytes = f.encode();
    const rt::Frame back = rt::Frame::decode(bytes.data(), bytes.size());
    check(back.encode() == bytes, "frame re-encodes byte-identically");
    check(back.header == f.header, "frame header");
    check(back.entries.size() == 2 && back.entries[0].name == "$rho", "frame entries sorted");
    check(back.entries[1].as_f64s() == std::vector<double>{1.5, -0.0}, "frame entry values");
    check_rejects_damage(bytes, [](const std::uint8_t* d, std::size_t n) { rt::Frame::decode(d, n); }, "frame");

    const auto decode_capped = [](const std::uint8_t* d, std::size_t n) { rt::Frame::decode(d, n, 1024); };
    rt::Bytes unknown = bytes;
    unknown[5] = 8;
    check(outcome(unknown, decode_capped) == "UnknownMessageType", "unknown message type");
    rt::Bytes huge = bytes;
    huge[53] = 4;  // the payload length grows by 1024
    check(outcome(huge, decode_capped) == "TooLarge", "payload over the cap");
    rt::Bytes overrun = bytes;
    overrun[84] = 0x58;  // the first entry's name claims 600 bytes
    overrun[85] = 0x02;
    check(outcome(recrc(overrun), decode_capped) == "Malformed", "entry overruns the payload");
    rt::Bytes fewer = bytes;
    fewer[80] = 1;  // one entry fewer than the payload holds
    check(outcome(recrc(fewer), decode_capped) == "Malformed", "bytes after the last entry");
    check(outcome(rt::Bytes(bytes.begin(), bytes.end() - 1), decode_capped) == "Truncated", "cut frame");

    rt::Frame bad = sample_frame();
    bad.header.msg_type = 0;
    check(outcome(bytes, [&](const std::uint8_t*, std::size_t) { bad.encode(); }) == "Encode", "unknown type refused");
    bad = sample_frame();
    bad.entries.push_back(rt::FrameEntry::f64s("z", {}, {1.0}));
    check(outcome(bytes, [&](const std::uint8_t*, std::size_t) { bad.encode(); }) == "Encode", "duplicate refused");
}

/// A CRC-valid frame holding one empty float entry "e" of shape `dims`, written by hand (the encoder
/// refuses shapes no array can have).
rt::Bytes frame_with_empty_entry(const rt::Dims& dims) {
    rt::Frame header_only;
    header_only.header = sample_frame().header;
    rt::Bytes bytes = header_only.encode();
    bytes.resize(80);
    const std::uint8_t entry[] = {1, 0, 0, 0, 1, 0, 'e', rt::DT_F64, static_cast<std::uint8_t>(dims.size())};
    bytes.insert(bytes.end(), entry, entry + sizeof entry);
    for (std::uint32_t d : dims) {
        for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<std::uint8_t>(d >> (8 * k)));
    }
    while (bytes.size() % 8 != 0) bytes.push_back(0);
    const std::size_t payload = bytes.size() - 80;
    for (int k = 0; k < 4; ++k) bytes[52 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(payload >> (8 * k));
    bytes.resize(bytes.size() + 4);
    return recrc(bytes);
}

void test_frame_shapes() {
    const auto decode = [](const std::uint8_t* d, std::size_t n) { rt::Frame::decode(d, n, 1u << 16); };
    check(outcome(frame_with_empty_entry({0, 3}), decode) == "ok", "an empty 0 x 3 array is fine");
    check(outcome(frame_with_empty_entry(rt::Dims(65, 0)), decode) == "Malformed", "65 dims");
    const std::uint32_t m = 0xFFFFFFFFu;
    check(outcome(frame_with_empty_entry({0, m, m, m}), decode) == "Malformed", "empty but huge");
    check(outcome(frame_with_empty_entry({m, m, m, 0}), decode) == "Malformed", "huge but empty");
}

// -- the coordinator ----------------------------------------------------------------------------

/// f(x) = 1/2 (x - a)^2 for a 1-vector: P = [1], q = [-a], c = a^2 / 2.
std::shared_ptr<rt::LocalSolver> pull_towards(const rt::ObjectSpec& object, double a) {
    return std::make_shared<rt::QuadraticSolver>(object, std::vector<double>{1.0}, std::vector<double>{-a},
                                                 0.5 * a * a);
}

/// Three objects agree on one shared scalar: the optimum is the mean of their targets.
rt::PlanSpec consensus_plan() {
    rt::PlanSpec plan;
    plan.name = "consensus";
    rt::SharedSpec g;
    g.name = "g";
    g.n = 1;
    g.vars.push_back(rt::SharedVarSpec{"w", 0, 1, rt::SharedTerm{}});
    plan.shared.push_back(g);
    for (const char* name : {"a", "b", "c"}) {
        rt::ObjectSpec o;
        o.name = name;
        o.n = 1;
        o.blocks.push_back(rt::Block::consensus(0, 0, 0, 1));
        plan.objects.push_back(o);
    }
    return plan;
}

void test_consensus() {
    const rt::PlanSpec plan = consensus_plan();
    std::vector<std::shared_ptr<rt::LocalSolver>> solvers;
    const double targets[] = {1.0, 2.0, 6.0};
    for (std::size_t i = 0; i < 3; ++i) solvers.push_back(pull_towards(plan.objects[i], targets[i]));
    rt::Coordinator c(plan, rt::Options{});
    const rt::SolveResult r = c.solve(solvers);
    check(r.status == rt::Status::Optimal, "consensus converges: " + r.message);
    check(std::fabs(r.z[0][0] - 3.0) < 1e-3, "consensus reaches the mean");
    check(r.has_objective && std::fabs(r.objective - 7.0) < 1e-2, "consensus objective");
}

/// Two objects share a budget x_a + x_b <= 2 while pulling towards 3 each: x = (1, 1), objective 4.
void test_coupling() {
    rt::PlanSpec plan;
    plan.name = "budget";
    for (const char* name : {"a", "b"}) {
        rt::ObjectSpec o;
        o.name = name;
        o.n = 1;
        o.blocks.push_back(rt::Block::coupling_term(0, 1, {1.0}, {0.0}));
        plan.objects.push_back(o);
    }
    plan.couplings.push_back(rt::CouplingSpec{"budget", rt::Sense::Le, {2.0}});
    std::vector<std::shared_ptr<rt::LocalSolver>> solvers{pull_towards(plan.objects[0], 3.0),
                                                          pull_towards(plan.objects[1], 3.0)};
    rt::Coordinator c(plan, rt::Options{});
    const rt::SolveResult r = c.solve(solvers);
    check(r.status == rt::Status::Optimal, "coupling converges: " + r.message);
    check(std::fabs(r.x[0][0] - 1.0) < 1e-3 && std::fabs(r.x[1][0] - 1.0) < 1e-3, "coupling binds");
    check(r.has_objective && std::fabs(r.objective - 4.0) < 1e-2, "coupling objective");
}

/// A local solver whose third answer is not finite: the solve fails, it never ends optimal.
struct Poisoned : public rt::LocalSolver {
    Poisoned(std::shared_ptr<rt::LocalSolver> inner, double value) : inner_(std::move(inner)), value_(value) {}
    std::vector<double> prox(const std::vector<double>& centre, double rho) override {
        auto x = inner_->prox(centre, rho);
        if (++calls_ >= 3) x[0] = value_;
        return x;
    }
    double objective(const std::vector<double>& x) const override { return inner_->objective(x); }
    std::shared_ptr<rt::LocalSolver> inner_;
    double value_;
    int calls_ = 0;
};

void test_non_finite() {
    for (double value : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                         -std::numeric_limits<double>::infinity()}) {
        const rt::PlanSpec plan = consensus_plan();
        std::vector<std::shared_ptr<rt::LocalSolver>> solvers{
            pull_towards(plan.objects[0], 1.0), pull_towards(plan.objects[1], 2.0),
            std::make_shared<Poisoned>(pull_towards(plan.objects[2], 6.0), value)};
        rt::Coordinator c(plan, rt::Options{});
        const rt::SolveResult r = c.solve(solvers);
        check(r.status == rt::Status::LocalSolverFailed && r.iterations == 3, "non-finite x fails the solve");
    }
}

void test_shared_prox_required() {
    rt::PlanSpec plan = consensus_plan();
    plan.shared[0].closed_form = false;
    std::vector<std::shared_ptr<rt::LocalSolver>> solvers;
    for (const auto& o : plan.objects) solvers.push_back(pull_towards(o, 1.0));
    rt::Coordinator c(plan, rt::Options{});
    check(c.solve(solvers).status == rt::Status::LocalSolverFailed, "a block without closed form needs a prox");
}

}  // namespace

int main() {
    test_crc();
    test_records();
    test_non_canonical_records();
    test_frames();
    test_frame_shapes();
    test_consensus();
    test_coupling();
    test_non_finite();
    test_shared_prox_required();
    if (failures != 0) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("all checks passed\n");
    return 0;
}
