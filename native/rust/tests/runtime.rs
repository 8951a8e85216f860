//! Tests of the runtime on its own (no plan): CRC32C, the record and frame codecs, and the
//! coordinator on small hand-written plans whose optimum is known in closed form.

use catopt_runtime::runtime as rt;

/// Every truncation, every single-bit flip and one extra byte must be an `Err`, never a panic.
fn assert_rejects_damage<T>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, rt::WireError>) {
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "accepted a cut at {} bytes", cut);
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.to_vec();
            damaged[i] ^= 1 << bit;
            assert!(decode(&damaged).is_err(), "accepted a flip of bit {} in byte {}", bit, i);
        }
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_err(), "accepted a trailing byte");
}

fn kind<T>(r: Result<T, rt::WireError>) -> rt::WireErrorKind {
    match r {
        Ok(_) => panic!("accepted input that must be rejected"),
        Err(e) => e.kind,
    }
}

#[test]
fn crc32c_check_value() {
    assert_eq!(rt::crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(rt::crc32c_update(rt::crc32c(b"1234"), b"56789"), 0xE306_9283);
    assert_eq!(rt::crc32c(b""), 0);
}

// -- records ------------------------------------------------------------------------------------

/// A record of schema "S" v2: f (f64 scalar), ia (i64 [2]), b (bool [3]).
fn sample_record() -> Vec<u8> {
    let mut w = rt::RecordWriter::new("S", 2, 3).expect("header");
    w.f64s(0, &[], &[-0.0], "S.f").unwrap();
    w.i64s(1, &[2], &[i64::MIN, 7], "S.ia").unwrap();
    w.bools(2, &[3], &[true, false, true], "S.b").unwrap();
    w.finish()
}

#[test]
fn record_round_trip_and_damage() {
    let bytes = sample_record();
    let rec = rt::parse_record(&bytes, "S", 2, 3).expect("parses");
    assert_eq!((rec.name, rec.version), ("S", 2));
    let f = rec.f64s(0, &[], "S.f").unwrap().expect("present");
    assert_eq!(f[0].to_bits(), (-0.0f64).to_bits());
    assert_eq!(rec.i64s(1, &[2], "S.ia").unwrap(), Some(vec![i64::MIN, 7]));
    assert_eq!(rec.bools(2, &[3], "S.b").unwrap(), Some(vec![true, false, true]));
    assert_rejects_damage(&bytes, |b| rt::parse_record(b, "S", 2, 3).map(|_| ()));
}

#[test]
fn record_fields_are_checked_against_the_schema() {
    let bytes = sample_record();
    let rec = rt::parse_record(&bytes, "S", 2, 3).unwrap();
    assert_eq!(kind(rec.f64s(1, &[2], "S.ia")), rt::WireErrorKind::SchemaMismatch);
    assert_eq!(kind(rec.i64s(1, &[3], "S.ia")), rt::WireErrorKind::SchemaMismatch);
    assert_eq!(kind(rt::parse_record(&bytes, "T", 2, 3)), rt::WireErrorKind::SchemaMismatch);
    assert_eq!(kind(rt::required::<Vec<f64>>(None, "S.g")), rt::WireErrorKind::MissingField);
    // a reader that knows fewer fields skips the ones appended after its own
    let older = rt::parse_record(&bytes, "S", 1, 1).unwrap();
    assert_eq!(older.i64s(1, &[2], "S.ia").unwrap(), None);
}

/// `bytes` with its CRC32C trailer recomputed (so that a change reaches the checks behind it).
fn recrc(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len() - 4;
    let crc = rt::crc32c(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn records_no_encoder_writes_are_rejected() {
    let bytes = sample_record();
    let fields = 8 + 1 + 6; // header, name "S", version and count
                            // a field count the reader's own version cannot have: this v2 record holds three fields;
                            // other versions may have more or fewer (defaults fill, unknown fields are skipped)
    assert_eq!(kind(rt::parse_record(&bytes, "S", 2, 4)), rt::WireErrorKind::SchemaMismatch);
    assert_eq!(kind(rt::parse_record(&bytes, "S", 2, 2)), rt::WireErrorKind::SchemaMismatch);
    assert!(rt::parse_record(&bytes, "S", 3, 2).is_ok() && rt::parse_record(&bytes, "S", 1, 4).is_ok());
    assert!(rt::parse_record(&bytes, "S", 3, 4).is_ok() && rt::parse_record(&bytes, "S", 1, 2).is_ok());
    // field 0 renumbered: the fields are 0, 1, 2 in order or the record is not canonical
    let mut renumbered = bytes.clone();
    renumbered[fields] = 1;
    assert_eq!(kind(rt::parse_record(&recrc(renumbered), "S", 2, 3)), rt::WireErrorKind::Malformed);
    // a bool byte 2 in a field this reader skips is still malformed
    let mut bool2 = bytes.clone();
    let last_bool = bool2.len() - 5;
    bool2[last_bool] = 2;
    assert_eq!(kind(rt::parse_record(&recrc(bool2), "S", 1, 1)), rt::WireErrorKind::Malformed);
}

#[test]
fn record_writer_refuses_values_that_do_not_fit_the_shape() {
    let mut w = rt::RecordWriter::new("S", 1, 1).unwrap();
    assert_eq!(kind(w.f64s(0, &[3], &[1.0, 2.0], "S.f")), rt::WireErrorKind::Encode);
}

// -- frames -------------------------------------------------------------------------------------

fn sample_frame() -> rt::Frame {
    rt::Frame {
        header: rt::FrameHeader {
            msg_type: 3,
            spec_hash: [7u8; 32],
            schema_id: 1,
            schema_version: 2,
            sender: 9,
            epoch: 4,
            seq: 5,
            round: 6,
        },
        entries: vec![rt::FrameEntry::f64s("z", &[2], &[1.5, -0.0]), rt::FrameEntry::f64s("$rho", &[], &[2.0])],
    }
}

#[test]
fn frame_round_trip_and_damage() {
    let frame = sample_frame();
    let bytes = frame.encode().expect("encodes");
    let back = rt::Frame::decode(&bytes, rt::DEFAULT_MAX_PAYLOAD).expect("decodes");
    assert_eq!(back.encode().expect("re-encodes"), bytes);
    assert_eq!(back.header, frame.header);
    assert_eq!(back.entries[0].name, "$rho");
    assert_eq!(back.entries[1].as_f64s(), Some(vec![1.5, -0.0]));
    assert_rejects_damage(&bytes, |b| rt::Frame::decode(b, rt::DEFAULT_MAX_PAYLOAD));
}

#[test]
fn frame_errors_have_the_python_kinds() {
    let bytes = sample_frame().encode().unwrap();
    let decode = |b: Vec<u8>| kind(rt::Frame::decode(&b, 1024));
    let mut unknown = bytes.clone();
    unknown[5] = 8;
    assert_eq!(decode(unknown), rt::WireErrorKind::UnknownMessageType);
    let mut huge = bytes.clone();
    huge[52..56].copy_from_slice(&1025u32.to_le_bytes());
    assert_eq!(decode(huge), rt::WireErrorKind::TooLarge);
    // a CRC-valid frame whose first entry claims more data than the payload holds
    let mut overrun = bytes.clone();
    overrun[84..86].copy_from_slice(&600u16.to_le_bytes());
    assert_eq!(decode(recrc(overrun)), rt::WireErrorKind::Malformed);
    // a CRC-valid frame with one entry fewer than it holds: bytes after the last entry
    let mut fewer = bytes.clone();
    fewer[80..84].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(decode(recrc(fewer)), rt::WireErrorKind::Malformed);
    assert_eq!(decode(bytes[..bytes.len() - 1].to_vec()), rt::WireErrorKind::Truncated);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode(longer), rt::WireErrorKind::Length);
}

/// A CRC-valid frame holding one empty float entry "e" of shape `dims`, written by hand (the
/// encoder refuses shapes no array can have).
fn frame_with_empty_entry(dims: &[u32]) -> Vec<u8> {
    let mut bytes = rt::Frame { header: sample_frame().header, entries: vec![] }.encode().unwrap();
    bytes.truncate(80); // the header alone
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&[b'e', rt::DT_F64, dims.len() as u8]);
    for d in dims {
        bytes.extend_from_slice(&d.to_le_bytes());
    }
    while bytes.len() % 8 != 0 {
        bytes.push(0);
    }
    let payload = (bytes.len() - 80) as u32;
    bytes[52..56].copy_from_slice(&payload.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    recrc(bytes)
}

#[test]
fn frame_shapes_no_array_can_have_are_malformed() {
    let decode = |dims: &[u32]| rt::Frame::decode(&frame_with_empty_entry(dims), 1 << 16);
    assert_eq!(decode(&[0, 3]).expect("an empty 0 x 3 array is fine").entries[0].dims, vec![0, 3]);
    assert_eq!(kind(decode(&[0; 65])), rt::WireErrorKind::Malformed);
    assert_eq!(kind(decode(&[0, u32::MAX, u32::MAX, u32::MAX])), rt::WireErrorKind::Malformed);
    assert_eq!(kind(decode(&[u32::MAX, u32::MAX, u32::MAX, 0])), rt::WireErrorKind::Malformed);
}

#[test]
fn frame_encoder_refuses_what_the_decoder_would_reject() {
    let mut frame = sample_frame();
    frame.header.msg_type = 0;
    assert_eq!(kind(frame.encode()), rt::WireErrorKind::Encode);
    let mut frame = sample_frame();
    frame.entries.push(rt::FrameEntry::f64s("z", &[], &[1.0]));
    assert_eq!(kind(frame.encode()), rt::WireErrorKind::Encode);
}

// -- the coordinator ----------------------------------------------------------------------------

/// f(x) = 1/2 (x - a)^2 for a 1-vector: P = [1], q = [-a], c = a^2 / 2.
fn pull_towards(object: &rt::ObjectSpec, a: f64) -> Box<dyn rt::LocalSolver> {
    Box::new(rt::QuadraticSolver::new(object, vec![1.0], vec![-a], 0.5 * a * a))
}

/// Three objects agree on one shared scalar: the optimum is the mean of their targets.
fn consensus_plan() -> rt::PlanSpec {
    let object = |name: &'static str| rt::ObjectSpec {
        name,
        n: 1,
        blocks: vec![rt::Block::Consensus { shared: 0, var: 0, x_offset: 0, size: 1 }],
    };
    rt::PlanSpec {
        name: "consensus",
        shared: vec![rt::SharedSpec {
            name: "g",
            n: 1,
            vars: vec![rt::SharedVarSpec { name: "w", offset: 0, size: 1, term: rt::SharedTerm::Free }],
            closed_form: true,
        }],
        objects: vec![object("a"), object("b"), object("c")],
        couplings: vec![],
    }
}

#[test]
fn consensus_reaches_the_mean() {
    let plan = consensus_plan();
    let mut solvers: Vec<Box<dyn rt::LocalSolver>> =
        [1.0, 2.0, 6.0].iter().zip(&plan.objects).map(|(a, o)| pull_towards(o, *a)).collect();
    let mut c = rt::Coordinator::new(plan, rt::Options::default());
    let r = c.solve(&mut solvers);
    assert_eq!(r.status, rt::Status::Optimal, "{}", r.message);
    assert!((r.z[0][0] - 3.0).abs() < 1e-3, "z = {:?}", r.z);
    // 1/2 (2^2 + 1^2 + 3^2) at the mean
    assert!((r.objective.unwrap() - 7.0).abs() < 1e-2, "objective {:?}", r.objective);
}

/// Two objects share a budget `x_a + x_b <= 2` while pulling towards 3 each: the optimum is
/// x = (1, 1) with objective 2 x 1/2 (3 - 1)^2 = 4.
#[test]
fn coupling_limit_binds() {
    let term = |name: &'static str| rt::ObjectSpec {
        name,
        n: 1,
        blocks: vec![rt::Block::Coupling { coupling: 0, rows: 1, b_mat: vec![1.0], b_vec: vec![0.0] }],
    };
    let plan = rt::PlanSpec {
        name: "budget",
        shared: vec![],
        objects: vec![term("a"), term("b")],
        couplings: vec![rt::CouplingSpec { name: "budget", sense: rt::Sense::Le, rhs: vec![2.0] }],
    };
    let mut solvers: Vec<Box<dyn rt::LocalSolver>> = plan.objects.iter().map(|o| pull_towards(o, 3.0)).collect();
    let mut c = rt::Coordinator::new(plan, rt::Options::default());
    let r = c.solve(&mut solvers);
    assert_eq!(r.status, rt::Status::Optimal, "{}", r.message);
    assert!((r.x[0][0] - 1.0).abs() < 1e-3 && (r.x[1][0] - 1.0).abs() < 1e-3, "x = {:?}", r.x);
    assert!((r.objective.unwrap() - 4.0).abs() < 1e-2);
}

/// A local solver whose third answer is not finite: the solve fails, it never ends `optimal`.
struct Poisoned {
    inner: Box<dyn rt::LocalSolver>,
    calls: usize,
    value: f64,
}

impl rt::LocalSolver for Poisoned {
    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, rt::StepFailure> {
        self.calls += 1;
        let mut x = self.inner.prox(centre, rho)?;
        if self.calls >= 3 {
            x[0] = self.value;
        }
        Ok(x)
    }

    fn objective(&self, x: &[f64]) -> f64 {
        self.inner.objective(x)
    }
}

#[test]
fn non_finite_local_solutions_fail_the_solve() {
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let plan = consensus_plan();
        let mut solvers: Vec<Box<dyn rt::LocalSolver>> = vec![
            pull_towards(&plan.objects[0], 1.0),
            pull_towards(&plan.objects[1], 2.0),
            Box::new(Poisoned { inner: pull_towards(&plan.objects[2], 6.0), calls: 0, value }),
        ];
        let mut c = rt::Coordinator::new(plan, rt::Options::default());
        let r = c.solve(&mut solvers);
        assert_eq!(r.status, rt::Status::LocalSolverFailed, "{}: {}", value, r.message);
        assert_eq!(r.iterations, 3);
    }
}

#[test]
fn a_shared_block_without_closed_form_needs_a_prox() {
    let mut plan = consensus_plan();
    plan.shared[0].closed_form = false;
    let mut solvers: Vec<Box<dyn rt::LocalSolver>> = plan.objects.iter().map(|o| pull_towards(o, 1.0)).collect();
    let mut c = rt::Coordinator::new(plan, rt::Options::default());
    assert_eq!(c.solve(&mut solvers).status, rt::Status::LocalSolverFailed);
}

// -- error and result types ---------------------------------------------------------------------

#[test]
fn step_failure_is_a_displayable_error() {
    let failure = rt::StepFailure { status: rt::Status::Infeasible, message: "object `a`: no point".into() };
    assert_eq!(failure.to_string(), "infeasible: object `a`: no point");
    // `?` turns it into a boxed error (what an embedding program's main returns)
    fn fails(f: rt::StepFailure) -> Result<(), Box<dyn std::error::Error>> {
        Err(f)?
    }
    let boxed = fails(failure.clone()).unwrap_err();
    assert_eq!(boxed.to_string(), failure.to_string());
    assert!(boxed.source().is_none());
}

#[test]
fn scalar_never_panics() {
    assert_eq!(rt::scalar::<f64>(&[]), None);
    assert_eq!(rt::scalar(&[2.5]), Some(2.5));
    assert_eq!(rt::scalar(&[1i64, 2]), None);
    // a decoded scalar field
    let bytes = sample_record();
    let rec = rt::parse_record(&bytes, "S", 2, 3).expect("parses");
    let f = rec.f64s(0, &[], "S.f").unwrap().expect("present");
    assert_eq!(rt::scalar(&f).map(f64::to_bits), Some((-0.0f64).to_bits()));
}

// -- the generated QP solver in the coordinator's own loop --------------------------------------

/// Three QP objects agree on a shared 2-vector: a separable box QP (its map the identity: the
/// direct step), a dense QP without rows (the cached affine KKT map through Cholesky) and one
/// with a local variable and a general inequality (active sets, LU).
fn qp_plan() -> (rt::PlanSpec, Vec<rt::QpData>) {
    let object = |name: &'static str, n: usize| rt::ObjectSpec {
        name,
        n,
        blocks: vec![rt::Block::Consensus { shared: 0, var: 0, x_offset: 0, size: 2 }],
    };
    let plan = rt::PlanSpec {
        name: "qps",
        shared: vec![rt::SharedSpec {
            name: "g",
            n: 2,
            vars: vec![rt::SharedVarSpec { name: "w", offset: 0, size: 2, term: rt::SharedTerm::SumSquares(0.1) }],
            closed_form: true,
        }],
        objects: vec![object("boxed", 2), object("dense", 2), object("general", 3)],
        couplings: vec![],
    };
    let boxed = rt::QpData {
        p: vec![2.0, 0.0, 0.0, 1.0],
        q: vec![-2.0, -8.0],
        r: 0.0,
        a: vec![1.0, 0.0, 0.0, 1.0],
        l: vec![0.0, 0.0],
        u: vec![3.0, 3.0],
    };
    let dense = rt::QpData { p: vec![2.0, 0.5, 0.5, 1.0], q: vec![1.0, -1.0], r: 1.5, a: vec![], l: vec![], u: vec![] };
    let general = rt::QpData {
        p: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        q: vec![0.0, 0.0, -4.0],
        r: 0.0,
        a: vec![1.0, 0.0, 1.0],
        l: vec![f64::NEG_INFINITY],
        u: vec![1.0],
    };
    (plan, vec![boxed, dense, general])
}

/// The generated QP solver behind a solver that is not one: the coordinator takes the general
/// way (its centre as a slice, its rows formed by the coordinator, its x checked).
struct Wrapped(rt::QpSolver);

impl rt::LocalSolver for Wrapped {
    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, rt::StepFailure> {
        self.0.prox(centre, rho)
    }

    fn prox_into(&mut self, centre: &[f64], rho: f64, x: &mut Vec<f64>) -> Result<(), rt::StepFailure> {
        self.0.prox_into(centre, rho, x)
    }

    fn objective(&self, x: &[f64]) -> f64 {
        self.0.objective(x)
    }
}

fn qp_solvers(plan: &rt::PlanSpec, data: &[rt::QpData], wrapped: bool) -> Vec<Box<dyn rt::LocalSolver>> {
    plan.objects
        .iter()
        .zip(data)
        .map(|(o, d)| {
            let s = rt::QpSolver::new(o, d.clone());
            if wrapped {
                Box::new(Wrapped(s)) as Box<dyn rt::LocalSolver>
            } else {
                Box::new(s) as Box<dyn rt::LocalSolver>
            }
        })
        .collect()
}

#[test]
fn generated_qp_solvers_step_in_place_with_the_general_ways_result() {
    let (plan, data) = qp_plan();
    for opts in [rt::Options::default(), rt::Options { max_iter: 7, ..rt::Options::default() }] {
        let fast = rt::Coordinator::new(plan.clone(), opts.clone()).solve(&mut qp_solvers(&plan, &data, false));
        let slow = rt::Coordinator::new(plan.clone(), opts.clone()).solve(&mut qp_solvers(&plan, &data, true));
        assert_eq!(fast, slow);
        let objective = fast.objective.expect("an objective");
        assert!(objective.is_finite());
        if opts.max_iter == 7 {
            // a max_iterations solve reports the objective at its last x, asked at the end
            assert_eq!(fast.status, rt::Status::MaxIterations);
            let f: f64 = qp_solvers(&plan, &data, false).iter().zip(&fast.x).map(|(s, x)| s.objective(x)).sum();
            let g = 0.1 * fast.z[0].iter().map(|v| v * v).sum::<f64>();
            assert!((objective - (f + g)).abs() <= 1e-12 * (1.0 + objective.abs()), "{} vs {}", objective, f + g);
        } else {
            assert_eq!(fast.status, rt::Status::Optimal, "{}", fast.message);
            // the general object's row x0 + x2 <= 1 holds at the solution
            assert!(fast.x[2][0] + fast.x[2][2] <= 1.0 + 1e-6, "x = {:?}", fast.x[2]);
        }
    }
}

#[test]
fn update_with_given_objectives_reports_their_sum_every_iteration() {
    let plan = consensus_plan();
    let mut c = rt::Coordinator::new(plan, rt::Options::default());
    let it = c.update(&[vec![1.0], vec![2.0], vec![6.0]], &[0.5, 1.0, 2.0]).expect("an iterate");
    assert_eq!(it.objective, 3.5);
    let err = c.update(&[vec![1.0], vec![2.0], vec![6.0]], &[0.5, f64::NAN, 2.0]).unwrap_err();
    assert_eq!(err.status, rt::Status::LocalSolverFailed);
    assert!(err.message.contains("`b`") && err.message.contains("non-finite objective"), "{}", err.message);
}

/// A solver whose x is fine but whose objective value is NaN.
struct NanObjective(Box<dyn rt::LocalSolver>);

impl rt::LocalSolver for NanObjective {
    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, rt::StepFailure> {
        self.0.prox(centre, rho)
    }

    fn objective(&self, _x: &[f64]) -> f64 {
        f64::NAN
    }
}

#[test]
fn a_nan_objective_fails_the_solve_when_it_is_asked_for() {
    for max_iter in [10000, 2] {
        let plan = consensus_plan();
        let mut solvers: Vec<Box<dyn rt::LocalSolver>> = vec![
            pull_towards(&plan.objects[0], 1.0),
            Box::new(NanObjective(pull_towards(&plan.objects[1], 2.0))),
            pull_towards(&plan.objects[2], 6.0),
        ];
        let mut c = rt::Coordinator::new(plan, rt::Options { max_iter, ..rt::Options::default() });
        let r = c.solve(&mut solvers);
        assert_eq!(r.status, rt::Status::LocalSolverFailed, "{}", r.message);
        assert!(r.message.contains("`b`") && r.message.contains("non-finite objective"), "{}", r.message);
        assert!(r.objective.is_none());
    }
}

/// ADMM through the public step API: centres, each solver's prox, `update` with every objective.
fn solve_by_updates(
    plan: &rt::PlanSpec,
    solvers: &mut [Box<dyn rt::LocalSolver>],
    opts: rt::Options,
) -> (usize, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut c = rt::Coordinator::new(plan.clone(), opts.clone());
    let mut xs = Vec::new();
    for k in 1..=opts.max_iter {
        let centres = c.centres();
        xs = solvers.iter_mut().zip(&centres).map(|(s, d)| s.prox(d, c.rho).expect("a step")).collect();
        let objectives: Vec<f64> = solvers.iter().zip(&xs).map(|(s, x)| s.objective(x)).collect();
        if c.update(&xs, &objectives).expect("an iterate").converged {
            return (k, xs, c.z.clone());
        }
    }
    (opts.max_iter, xs, c.z.clone())
}

/// Two QP tenants share a capacity: `x_a + x_b <= 3` in each of two pools, both pulling above it
/// (coupling rows only, their terms one block: the stride sums).
fn shared_capacity_plan() -> (rt::PlanSpec, Vec<rt::QpData>) {
    let tenant = |name: &'static str| rt::ObjectSpec {
        name,
        n: 2,
        blocks: vec![rt::Block::Coupling {
            coupling: 0,
            rows: 2,
            b_mat: vec![1.0, 0.0, 0.0, 1.0],
            b_vec: vec![0.0; 2],
        }],
    };
    let plan = rt::PlanSpec {
        name: "capacity",
        shared: vec![],
        objects: vec![tenant("a"), tenant("b")],
        couplings: vec![rt::CouplingSpec { name: "cap", sense: rt::Sense::Le, rhs: vec![3.0, 3.0] }],
    };
    let data = |q: [f64; 2]| rt::QpData {
        p: vec![1.0, 0.0, 0.0, 2.0],
        q: q.to_vec(),
        r: 0.0,
        a: vec![1.0, 0.0, 0.0, 1.0],
        l: vec![0.0, 0.0],
        u: vec![4.0, 4.0],
    };
    (plan, vec![data([-3.0, -5.0]), data([-4.0, -2.0])])
}

#[test]
fn solve_matches_a_loop_of_update_calls() {
    for (plan, data) in [qp_plan(), shared_capacity_plan()] {
        for max_iter in [10000, 3] {
            let opts = rt::Options { max_iter, ..rt::Options::default() };
            let r = rt::Coordinator::new(plan.clone(), opts.clone()).solve(&mut qp_solvers(&plan, &data, false));
            let (iterations, x, z) = solve_by_updates(&plan, &mut qp_solvers(&plan, &data, true), opts);
            assert_eq!((r.iterations, &r.x, &r.z), (iterations, &x, &z), "{}: {}", plan.name, r.message);
            assert_eq!(r.status, if max_iter == 3 { rt::Status::MaxIterations } else { rt::Status::Optimal });
        }
    }
}
