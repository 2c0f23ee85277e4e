//! Guard: the hot path makes no allocation per record. A counting global allocator measures the
//! allocations of ingesting a warm batch; they must not grow with the number of records.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use natmeter_core::engine::Attributor;
use natmeter_core::sources::{Input, Reader};
use natmeter_sim::{simulate, Scope, SimConfig};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The count is global: the tests of this file take turns, or each would count the other's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn warm_batches_allocate_independently_of_record_count() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let sim = simulate(&SimConfig {
        pods: 400,
        nat_gateways: 1,
        minutes: 30,
        scope: Scope::NatEnis,
        ..SimConfig::default()
    });
    let topo = sim.topology();
    let format = sim.format();
    let attributor = Attributor::new(&topo, format);
    let mut engine = attributor.results();
    let mut reader = Reader::default();
    let big = sim.events.iter().max_by_key(|e| e.decoded_bytes).unwrap();
    let mut measure = |json: &str| {
        // Warm: the first pass sizes buffers and fills the ledger's keys, as in a warm container.
        let input = Input::Event {
            bytes: json.as_bytes(),
            origin: "x",
        };
        attributor.reset(&mut engine);
        attributor.ingest(input, &mut reader, &mut engine).unwrap();
        attributor.reset(&mut engine);
        let before = ALLOCS.load(Ordering::Relaxed);
        attributor.ingest(input, &mut reader, &mut engine).unwrap();
        let records = engine.records().read as usize;
        (ALLOCS.load(Ordering::Relaxed) - before, records)
    };
    let (allocs, records) = measure(&big.json);
    eprintln!("allocations: {allocs} for {records} records");
    assert!(
        records > 3000,
        "a ~1 MB batch has thousands of records, got {records}"
    );
    // Per batch: the event list, ledger growth per new key (not per record), a few strings.
    // Per-record allocation would show as thousands.
    assert!(allocs <= 64, "{allocs} allocations for {records} records");
}

/// The same through an inventory (names from the EKS audit log): a warm batch builds its sources'
/// identities again (the results were reset), but from names the inventory built once (shared,
/// not copied), so the allocations still do not grow with the records.
#[test]
fn warm_named_batches_allocate_independently_of_record_count() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    use natmeter_core::inventory::Inventory;
    let sim = simulate(&SimConfig {
        pods: 400,
        nat_gateways: 1,
        minutes: 30,
        scope: Scope::NatEnis,
        ..SimConfig::default()
    });
    let topo = sim.topology();
    // Every source a pod since before the simulation.
    let mut inventory = Inventory::default();
    for (n, s) in sim.truth.sources.iter().enumerate() {
        let line = format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","verb":"patch","user":{{"username":"system:node:n1"}},"objectRef":{{"resource":"pods","namespace":"ns","name":"p{n}","subresource":"status"}},"responseStatus":{{"code":200}},"requestObject":{{"metadata":{{"uid":"u{n}"}},"status":{{"podIP":"{}","phase":"Running"}}}},"stageTimestamp":"2000-01-01T00:00:00.000000Z"}}"#,
            s.source
        );
        inventory.add_line(line.as_bytes()).unwrap();
    }
    let attributor = Attributor::new(&topo, sim.format()).with_resolver(&inventory);
    let mut engine = attributor.results();
    let mut reader = Reader::default();
    let big = sim.events.iter().max_by_key(|e| e.decoded_bytes).unwrap();
    let input = Input::Event {
        bytes: big.json.as_bytes(),
        origin: "x",
    };
    attributor.ingest(input, &mut reader, &mut engine).unwrap();
    attributor.reset(&mut engine);
    let before = ALLOCS.load(Ordering::Relaxed);
    attributor.ingest(input, &mut reader, &mut engine).unwrap();
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let records = engine.records().read as usize;
    let report = natmeter_core::report::Report::build_named(&engine, &topo, 0.045);
    assert_eq!(
        report.identity.as_ref().map(|i| i.resolved_bytes),
        Some(report.totals.bytes),
        "every byte named"
    );
    eprintln!("allocations: {allocs} for {records} records");
    assert!(records > 3000, "got {records}");
    assert!(allocs <= 64, "{allocs} allocations for {records} records");
}
