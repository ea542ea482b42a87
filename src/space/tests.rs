//! Tests of `space`.

#[test]
fn parameter_values_read_back_by_their_type() {
    for value in [
        ParamValue::Bool(true),
        ParamValue::Int(-3),
        ParamValue::Float(0.1),
        ParamValue::Float(2.0),
        ParamValue::Str("adam".into()),
    ] {
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(
            serde_json::from_str::<ParamValue>(&json).unwrap(),
            value,
            "{json}"
        );
    }
    let big: ParamValue = serde_json::from_str("18446744073709551615").unwrap();
    assert_eq!(big, ParamValue::Float(u64::MAX as f64));
    assert!(serde_json::from_str::<ParamValue>("null").is_err());
    assert!(serde_json::from_str::<ParamValue>("[1]").is_err());
}
use super::*;

#[test]
fn log_uniform_spans_decades_evenly() {
    let d = Distribution::LogUniform {
        low: 1e-4,
        high: 1e-1,
    };
    let mid = d.from_unit(0.5).as_f64().unwrap();
    assert!((mid.log10() - -2.5).abs() < 1e-9, "{mid}");
    assert!((d.from_unit(0.0).as_f64().unwrap() / 1e-4 - 1.0).abs() < 1e-12);
}

#[test]
fn int_respects_step_and_bounds() {
    let d = Distribution::Int {
        low: 16,
        high: 64,
        step: 16,
        log: false,
    };
    let seen: Vec<i64> = (0..100)
        .map(|i| match d.from_unit(i as f64 / 100.0) {
            ParamValue::Int(x) => x,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(seen.iter().all(|x| [16, 32, 48, 64].contains(x)));
    assert_eq!(seen.iter().filter(|&&x| x == 64).count(), 25);
}

#[test]
fn a_log_int_range_up_to_the_largest_integer_samples_all_of_it() {
    let d = Distribution::Int {
        low: 1,
        high: i64::MAX,
        step: 1,
        log: true,
    };
    let seen: Vec<f64> = (0..100)
        .map(|i| d.from_unit(i as f64 / 100.0).as_f64().unwrap())
        .collect();
    assert!(
        seen[0] < 10.0 && seen[50] > 1e8 && seen[50] < 1e11,
        "{seen:?}"
    );
    assert!(seen[99] > 1e18, "{seen:?}");
    let u = d.to_unit(&ParamValue::Int(3_000_000_000)).unwrap();
    assert!(u > 0.4 && u < 0.6, "{u}");
    assert!(d.narrowest_cell().unwrap().is_finite());
}

#[test]
fn log_int_favours_small_values() {
    let d = Distribution::Int {
        low: 1,
        high: 100,
        step: 1,
        log: true,
    };
    let small = (0..1000)
        .filter(|i| d.from_unit(*i as f64 / 1000.0).as_f64().unwrap() < 10.0)
        .count();
    assert!((480..=520).contains(&small), "{small}");
}

#[test]
fn to_unit_inverts_from_unit() {
    let dims = [
        Distribution::Uniform {
            low: -2.0,
            high: 3.0,
        },
        Distribution::LogUniform {
            low: 1e-4,
            high: 1e-1,
        },
        Distribution::Int {
            low: 16,
            high: 64,
            step: 16,
            log: false,
        },
        Distribution::Int {
            low: 1,
            high: 100,
            step: 1,
            log: true,
        },
        Distribution::Choice(vec![
            ParamValue::Str("a".into()),
            ParamValue::Str("b".into()),
        ]),
    ];
    for d in &dims {
        for i in 0..50 {
            let value = d.from_unit(i as f64 / 50.0);
            let back = d.from_unit(d.to_unit(&value).unwrap());
            match (&back, &value) {
                (ParamValue::Float(a), ParamValue::Float(b)) => {
                    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{d}: {a} {b}")
                }
                _ => assert_eq!(back, value, "{d}"),
            }
        }
    }
}

#[test]
fn grid_of_a_log_range_is_geometric() {
    let d = Distribution::LogUniform {
        low: 1e-3,
        high: 1e-1,
    };
    let v: Vec<f64> = d
        .grid_values(Some(3))
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!((v[1] - 1e-2).abs() < 1e-12, "{v:?}");
    assert!(d.grid_values(None).is_err());
    let wide = Distribution::Int {
        low: 0,
        high: i64::MAX - 1,
        step: 1,
        log: false,
    };
    let refused = wide.grid_values(None).unwrap_err();
    assert!(refused.contains("give `points = N`"), "{refused}");
    assert_eq!(wide.grid_values(Some(3)).unwrap().len(), 3);
}

#[test]
fn conditions_chain_and_an_inactive_parameter_is_left_out() {
    let choice = crate::space::string_choice;
    let when = |parent: &str, value: &str| {
        vec![Condition {
            parent: parent.into(),
            values: vec![ParamValue::Str(value.into())],
        }]
    };
    let mut schedule = Dimension::new("schedule", choice(&["step", "constant"]));
    schedule.when = when("optimizer", "sgd");
    let mut step = Dimension::new(
        "step",
        Distribution::Uniform {
            low: 0.0,
            high: 1.0,
        },
    );
    step.when = when("schedule", "step");
    let space = Space {
        dimensions: vec![
            step,
            schedule,
            Dimension::new("optimizer", choice(&["sgd", "adamw"])),
        ],
    };
    // The child is listed before its parents: activity does not depend on file order.
    let sgd_step = space.params_from_unit(&[0.3, 0.1, 0.1]);
    assert_eq!(sgd_step.len(), 3, "{sgd_step:?}");
    let sgd_constant = space.params_from_unit(&[0.3, 0.9, 0.1]);
    assert!(!sgd_constant.contains_key("step"), "{sgd_constant:?}");
    let adamw = space.params_from_unit(&[0.3, 0.1, 0.9]);
    assert_eq!(
        adamw.keys().collect::<Vec<_>>(),
        ["optimizer"],
        "a chain ends with its root"
    );
    let unit = space.unit_from_params(&adamw).unwrap();
    assert!(unit[0].is_nan() && unit[1].is_nan() && !unit[2].is_nan());
}
