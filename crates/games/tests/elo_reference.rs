//! The Elo fit against an independent reference: `fixtures/elo_reference.json` was written by
//! `tools/elo_reference.py`, which finds the same Bradley–Terry maximum by coordinate-wise bisection on the score
//! equations (plain Python) instead of Newton's method. Ratings must agree to 1e-6 Elo.

use selfplay_games::elo::{Pairing, fit_ratings};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/elo_reference.json");

fn index(v: &Value) -> usize {
    v.as_u64().expect("a count") as usize
}

#[test]
fn ratings_match_the_python_reference() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let anchors: Vec<(usize, f64)> =
            case["anchors"].as_array().unwrap().iter().map(|a| (index(&a[0]), a[1].as_f64().unwrap())).collect();
        let pairings: Vec<Pairing> = case["pairings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Pairing {
                a: index(&p[0]),
                b: index(&p[1]),
                wins: index(&p[2]),
                draws: index(&p[3]),
                losses: index(&p[4]),
            })
            .collect();
        let elo =
            fit_ratings(index(&case["players"]), &anchors, &pairings, case["prior_draws"].as_f64().unwrap()).unwrap();
        let expected: Vec<f64> = case["elo"].as_array().unwrap().iter().map(|e| e.as_f64().unwrap()).collect();
        assert_eq!(elo.len(), expected.len(), "{name}");
        for (i, (got, want)) in elo.iter().zip(&expected).enumerate() {
            assert!((got - want).abs() < 1e-6, "{name}: player {i} rated {got}, the reference {want}");
        }
    }
}
