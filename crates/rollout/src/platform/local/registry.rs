//! What the local platform runs: per slot the version, the desired count and each instance's
//! state. Plain data behind one short `std` mutex (never held across an `.await`), from which
//! the status and the switch's routing table are derived.

use std::sync::Arc;

use super::instance::InstanceControl;
use super::switch::{Backend, RoutingTable};
use crate::platform::{PlatformStatus, Routing, Slot, SlotStatus};

/// Where an instance is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InstanceState {
    /// Started; in routing when its readiness passes.
    Running,
    /// Out of routing, finishing its requests, then stopped.
    Draining,
    /// Exited on its own, with this status.
    Exited(String),
}

/// One instance of a slot.
#[derive(Debug)]
pub(crate) struct InstanceEntry {
    pub(crate) backend: Arc<Backend>,
    pub(crate) version: String,
    pub(crate) pid: Option<u32>,
    pub(crate) ready: bool,
    pub(crate) state: InstanceState,
    /// Dropping it stops the instance; taken out when the instance is stopped on purpose.
    pub(crate) control: Option<InstanceControl>,
}

impl InstanceEntry {
    pub(crate) fn id(&self) -> u64 {
        self.backend.id()
    }

    /// Started and not stopped or exited (ready or not).
    pub(crate) fn is_running(&self) -> bool {
        !matches!(self.state, InstanceState::Exited(_))
    }

    /// Receives traffic.
    pub(crate) fn is_routable(&self) -> bool {
        self.ready && self.state == InstanceState::Running
    }
}

/// One slot.
#[derive(Debug, Default)]
pub(crate) struct SlotState {
    pub(crate) version: Option<String>,
    pub(crate) desired: u32,
    /// Oldest first (ids only grow).
    pub(crate) instances: Vec<InstanceEntry>,
}

impl SlotState {
    pub(crate) fn ready(&self) -> u32 {
        count(self.instances.iter().filter(|i| i.is_routable()))
    }

    pub(crate) fn running(&self) -> u32 {
        count(self.instances.iter().filter(|i| i.is_running()))
    }

    /// The first instance that exited on its own, if one did.
    pub(crate) fn exited(&self) -> Option<(&InstanceEntry, &str)> {
        self.instances.iter().find_map(|i| match &i.state {
            InstanceState::Exited(status) => Some((i, status.as_str())),
            _ => None,
        })
    }
}

fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

/// Both slots and the routing.
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) routing: Routing,
    pub(crate) slots: [SlotState; 2],
    pub(crate) shut_down: bool,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            routing: Routing::None,
            slots: [SlotState::default(), SlotState::default()],
            shut_down: false,
        }
    }

    pub(crate) fn slot(&self, slot: Slot) -> &SlotState {
        &self.slots[slot as usize]
    }

    pub(crate) fn slot_mut(&mut self, slot: Slot) -> &mut SlotState {
        &mut self.slots[slot as usize]
    }

    pub(crate) fn entry_mut(&mut self, id: u64) -> Option<&mut InstanceEntry> {
        self.slots
            .iter_mut()
            .flat_map(|slot| slot.instances.iter_mut())
            .find(|entry| entry.id() == id)
    }

    pub(crate) fn status(&self) -> PlatformStatus {
        let slot_status = |slot: Slot| {
            let state = self.slot(slot);
            SlotStatus {
                slot,
                version: state.version.clone(),
                desired: state.desired,
                running: state.running(),
                ready: state.ready(),
            }
        };
        PlatformStatus {
            slots: [slot_status(Slot::Blue), slot_status(Slot::Green)],
            routing: self.routing,
        }
    }

    /// The routing table for the current state, continuing `previous`'s sequence.
    pub(crate) fn table(&self, previous: &RoutingTable) -> RoutingTable {
        let ready = |slot: Slot| {
            self.slot(slot)
                .instances
                .iter()
                .filter(|i| i.is_routable())
                .map(|i| Arc::clone(&i.backend))
                .collect()
        };
        RoutingTable::new(
            self.routing,
            [ready(Slot::Blue), ready(Slot::Green)],
            previous,
        )
    }
}

/// The share of front requests, in percent, that `routing` sends to `slot`; `None` under
/// [`Routing::Pooled`], where the share follows the instance counts.
///
/// A slot with a positive share is **live**: deploying to it or stopping it is refused.
/// Under `Pooled` both slots are scaled by rolling updates, so neither is refused.
pub(crate) fn routed_share(routing: Routing, slot: Slot) -> Option<u8> {
    match routing {
        Routing::None => Some(0),
        Routing::All { slot: live } => Some(if live == slot { 100 } else { 0 }),
        Routing::Split { canary, percent } => Some(if canary == slot {
            percent
        } else {
            100 - percent.min(100)
        }),
        Routing::Pooled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_routing() {
        use Slot::{Blue, Green};
        assert_eq!(routed_share(Routing::None, Blue), Some(0));
        assert_eq!(routed_share(Routing::All { slot: Blue }, Blue), Some(100));
        assert_eq!(routed_share(Routing::All { slot: Blue }, Green), Some(0));
        let split = Routing::Split {
            canary: Green,
            percent: 30,
        };
        assert_eq!(routed_share(split, Green), Some(30));
        assert_eq!(routed_share(split, Blue), Some(70));
        let done = Routing::Split {
            canary: Green,
            percent: 100,
        };
        assert_eq!(routed_share(done, Blue), Some(0));
        assert_eq!(routed_share(Routing::Pooled, Blue), None);
    }

    fn entry(id: u64, ready: bool, state: InstanceState) -> InstanceEntry {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 2000 + id as u16));
        InstanceEntry {
            backend: Backend::new(id, Slot::Blue, addr).unwrap(),
            version: "v1".to_owned(),
            pid: None,
            ready,
            state,
            control: None,
        }
    }

    #[test]
    fn status_counts_running_and_ready_instances() {
        let mut registry = Registry::new();
        registry.routing = Routing::All { slot: Slot::Blue };
        let blue = registry.slot_mut(Slot::Blue);
        blue.version = Some("v1".to_owned());
        blue.desired = 4;
        blue.instances = vec![
            entry(1, true, InstanceState::Running),
            entry(2, false, InstanceState::Running),
            entry(3, true, InstanceState::Draining),
            entry(4, false, InstanceState::Exited("exit status: 3".to_owned())),
        ];
        let status = registry.status();
        let blue = status.slot(Slot::Blue);
        assert_eq!((blue.desired, blue.running, blue.ready), (4, 3, 1));
        assert_eq!(status.slot(Slot::Green).version, None);
        assert_eq!(status.live_slot(), Some(Slot::Blue));
        let (exited, why) = registry.slot(Slot::Blue).exited().unwrap();
        assert_eq!((exited.id(), why), (4, "exit status: 3"));
        assert!(registry.entry_mut(2).is_some());
        assert!(registry.entry_mut(9).is_none());
    }
}
