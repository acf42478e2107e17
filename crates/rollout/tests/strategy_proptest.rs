//! Properties of the rolling-update planner and of `maxSurge`/`maxUnavailable` parsing: any
//! input is either refused with a message naming the setting, or planned within the bounds,
//! ending with every instance on the new release.

use engine_ops_rollout::{Fenceposts, IntOrPercent, Rolling, RollingStep};
use proptest::prelude::*;

/// `maxSurge` / `maxUnavailable` as a user writes them: counts and percentages, valid or not.
fn setting() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..120).prop_map(|n| n.to_string()),
        (0u32..150).prop_map(|p| format!("{p}%")),
    ]
}

/// Replays `steps` from `replicas` old ready instances; checks the bounds after each step;
/// returns (old, new ready) at the end.
fn replay(steps: &[RollingStep], replicas: u32, surge: u32, unavailable: u32) -> (u32, u32) {
    let (mut old, mut running, mut ready) = (replicas, 0u32, 0u32);
    for (index, step) in steps.iter().enumerate() {
        match *step {
            RollingStep::ScaleNew(to) => {
                assert!(to > running, "step {index} {step:?} does not scale up");
                running = to;
            }
            RollingStep::WaitNewReady => {
                assert!(running > ready, "step {index} waits for nothing");
                ready = running;
            }
            RollingStep::ScaleOld(to) => {
                assert!(to < old, "step {index} {step:?} does not scale down");
                old = to;
            }
        }
        assert!(
            old + running <= replicas + surge,
            "step {index} {step:?}: {} running, above {replicas} + {surge}",
            old + running
        );
        assert!(
            old + ready >= replicas.saturating_sub(unavailable),
            "step {index} {step:?}: {} ready, below {replicas} - {unavailable}",
            old + ready
        );
    }
    (old, ready)
}

proptest! {
    #[test]
    fn any_setting_is_refused_clearly_or_planned_within_bounds(
        replicas in 0u32..100,
        surge in setting(),
        unavailable in setting(),
    ) {
        let built = Rolling::builder()
            .replicas(replicas)
            .max_surge(surge.as_str())
            .max_unavailable(unavailable.as_str())
            .build();
        let surge_value: IntOrPercent = surge.parse().unwrap_or(IntOrPercent::Percent(101));
        let unavailable_value: IntOrPercent =
            unavailable.parse().unwrap_or(IntOrPercent::Percent(101));
        let too_big = |v: IntOrPercent| matches!(v, IntOrPercent::Percent(p) if p > 100);
        let should_refuse = too_big(surge_value)
            || too_big(unavailable_value)
            || (surge_value.is_zero() && unavailable_value.is_zero());
        match built {
            Err(error) => {
                prop_assert!(should_refuse, "{surge}/{unavailable} refused: {error}");
                prop_assert!(error.is_bad_input());
                let message = error.to_string();
                prop_assert!(
                    message.starts_with("invalid maxSurge: ")
                        || message.starts_with("invalid maxUnavailable: "),
                    "{message}"
                );
                prop_assert!(
                    message.contains("above 100%") || message.contains("may not be 0"),
                    "{message}"
                );
            }
            Ok(rolling) => {
                prop_assert!(!should_refuse, "{surge}/{unavailable} accepted");
                let Fenceposts { surge, unavailable, .. } = rolling.fenceposts();
                prop_assert!(surge + unavailable >= 1);
                let steps = rolling.plan_steps();
                // Terminates, and not by accident: each round moves at least one instance.
                prop_assert!(steps.len() as u32 <= 3 * replicas + 3);
                prop_assert_eq!(replay(steps, replicas, surge, unavailable), (0, replicas));
            }
        }
    }

    #[test]
    fn the_planner_holds_for_any_counts_that_can_move(
        replicas in 0u32..200,
        surge in 0u32..250,
        unavailable in 0u32..250,
    ) {
        let steps = Rolling::plan(replicas, surge, unavailable);
        if surge + unavailable == 0 || replicas == 0 {
            prop_assert!(steps.is_empty());
        } else {
            prop_assert!(steps.len() as u32 <= 3 * replicas + 3);
            prop_assert_eq!(replay(&steps, replicas, surge, unavailable), (0, replicas));
        }
    }

    #[test]
    fn parsing_round_trips_and_never_panics(text in "\\PC{0,8}", n in 0u32..100_000, p in 0u32..=100) {
        let _ = text.parse::<IntOrPercent>();
        prop_assert_eq!(n.to_string().parse::<IntOrPercent>().unwrap(), IntOrPercent::Int(n));
        let percent = IntOrPercent::Percent(p);
        prop_assert_eq!(percent.to_string().parse::<IntOrPercent>().unwrap(), percent);
    }

    #[test]
    fn resolved_fenceposts_round_as_kubernetes_does(
        replicas in 0u32..1000,
        s in 0u32..=100,
        u in 0u32..=100,
    ) {
        prop_assume!(s + u > 0);
        let f = Fenceposts::resolve(IntOrPercent::Percent(s), IntOrPercent::Percent(u), replicas)
            .unwrap();
        let exact_surge = f64::from(s) * f64::from(replicas) / 100.0;
        let exact_unavailable = f64::from(u) * f64::from(replicas) / 100.0;
        prop_assert_eq!(f64::from(f.surge), exact_surge.ceil());
        if f.unavailable_forced {
            prop_assert_eq!((f.surge, f.unavailable), (0, 1));
            prop_assert_eq!(exact_unavailable.floor(), 0.0);
        } else {
            prop_assert_eq!(f64::from(f.unavailable), exact_unavailable.floor());
        }
    }
}
