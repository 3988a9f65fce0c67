use conpere_core::synth::*;
use std::collections::BTreeMap;
fn main() {
    for (n, results) in [
        (10, false),
        (2000, false),
        (25_000, false),
        (25_000, true),
        (60_000, false),
    ] {
        let t = std::time::Instant::now();
        let u = University::generate(SynthConfig {
            results,
            ..SynthConfig::new(42, n)
        });
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        for r in u.records() {
            *c.entry(r.kind().as_str()).or_default() += 1;
        }
        let total: usize = c.values().sum();
        println!(
            "{n} students results={results}: {c:?} total={total} in {:?}",
            t.elapsed()
        );
    }
    let t = std::time::Instant::now();
    println!(
        "students_for_enrolments(1M, 2) = {} ({:?})",
        students_for_enrolments(1_000_000, 2),
        t.elapsed()
    );
    let s = students_for_enrolments(1_000_000, 2);
    let u = University::generate(SynthConfig::new(1, s));
    let e = u
        .people()
        .filter(|r| r.kind().as_str() == "enrolment")
        .count();
    println!("check: {s} students -> {e} enrolments");
    let u = University::generate(SynthConfig::new(42, 10));
    for r in u
        .records()
        .filter(|r| !matches!(r, conpere_core::model::Record::Enrolment(_)))
    {
        println!("{}", conpere_core::model::to_export_line("synth", &r));
    }
    println!("{:#?}", u.hard_cases());
}
