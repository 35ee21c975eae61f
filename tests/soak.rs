//! A short soak, for CI: seconds of steady dispatch to well-behaved spokes
//! while others churn around them. The long one is `bash scripts/soak.sh MINUTES`.

#[path = "support/soak.rs"]
mod soak;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_with_churn_loses_nothing_for_the_well_behaved_spokes() {
    let report =
        soak::run(soak::Settings { duration: Duration::from_secs(15), steady: 50, churners: 24, rate: 200 }).await;
    println!("{}", report.line());
    assert_eq!(report.lost(), 0);
    assert_eq!(report.spokes_after, 50, "every steady spoke was kept all along");
    assert!(report.churn_cycles > 100, "{report:?}");
    assert!(report.tasks_after <= report.tasks_before, "{report:?}");
    assert!(!report.closes.contains_key(&1011), "no internal errors: {report:?}");
}
