//! Every example in `examples/` runs as shipped.

use crate::common::Project;

/// The quickstart runs cold, then as a no-op, and its marts hold the expected answers.
#[test]
fn quickstart_runs() {
    let p = Project::example("quickstart");
    let run = p.run(&[]).ok();
    assert!(run.stdout.contains("0 failed"), "{}", run.text());
    assert_eq!(
        p.query("SELECT name, total FROM marts.top_customers ORDER BY total DESC"),
        [
            "Grace Hopper,634.99",
            "Edsger Dijkstra,410.0",
            "Frances Allen,305.4"
        ]
    );
    assert_eq!(p.query("SELECT count(*) FROM marts.small_orders"), ["8"]);
    assert_eq!(p.query("SELECT count(*) FROM marts.large_orders"), ["6"]);
    let again = p.run(&[]).ok();
    assert!(again.stdout.contains("0 ran"), "{}", again.text());
}
