//! The engine's calls, by id and by slot.
//!
//! The control plane names calls by [`CallId`]; the packet path comes from a socket, whose
//! entry names the call's slot. A packet then reaches its call by indexing, not through a
//! second hash lookup: with thousands of calls a lookup's control bytes and bucket are cache
//! misses, paid on every packet.

use std::collections::HashMap;

use super::call::CallId;

/// Values keyed by [`CallId`], each in a slot that stays its own while it lives. Freed slots
/// are reused, so the table holds as many slots as calls were ever live at once.
#[derive(Debug)]
pub(super) struct CallTable<T> {
    slots: Vec<Option<(CallId, T)>>,
    free: Vec<usize>,
    index: HashMap<CallId, usize>,
}

impl<T> Default for CallTable<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> CallTable<T> {
    /// Adds `value` under `id` (not present yet) and returns its slot.
    pub(super) fn insert(&mut self, id: CallId, value: T) -> usize {
        debug_assert!(!self.index.contains_key(&id));
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some((id, value));
                s
            }
            None => {
                self.slots.push(Some((id, value)));
                self.slots.len() - 1
            }
        };
        self.index.insert(id, slot);
        slot
    }

    /// The value in `slot`, with its id: the packet path's lookup.
    pub(super) fn at_mut(&mut self, slot: usize) -> Option<(CallId, &mut T)> {
        self.slots
            .get_mut(slot)?
            .as_mut()
            .map(|(id, value)| (*id, value))
    }

    /// The value in `slot`, with its id, read-only.
    pub(super) fn at(&self, slot: usize) -> Option<(CallId, &T)> {
        self.slots
            .get(slot)?
            .as_ref()
            .map(|(id, value)| (*id, value))
    }

    /// Slot `slot` as it lies in memory, without looking inside it (so without reading it).
    pub(super) fn entry(&self, slot: usize) -> Option<&Option<(CallId, T)>> {
        self.slots.get(slot)
    }

    pub(super) fn get(&self, id: CallId) -> Option<&T> {
        let slot = *self.index.get(&id)?;
        self.slots[slot].as_ref().map(|(_, value)| value)
    }

    pub(super) fn get_mut(&mut self, id: CallId) -> Option<&mut T> {
        let slot = *self.index.get(&id)?;
        self.slots[slot].as_mut().map(|(_, value)| value)
    }

    pub(super) fn remove(&mut self, id: CallId) -> Option<T> {
        let slot = self.index.remove(&id)?;
        let (_, value) = self.slots[slot].take()?;
        self.free.push(slot);
        Some(value)
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = CallId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (CallId, &T)> + '_ {
        self.slots.iter().flatten().map(|(id, value)| (*id, value))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (CallId, &mut T)> + '_ {
        self.slots
            .iter_mut()
            .flatten()
            .map(|(id, value)| (*id, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_ids_stay_their_own() {
        let mut t = CallTable::default();
        let a = t.insert(CallId(1), "a");
        let b = t.insert(CallId(2), "b");
        assert_ne!(a, b);
        assert_eq!(t.remove(CallId(1)), Some("a"));
        assert_eq!(t.remove(CallId(1)), None);
        assert_eq!(t.at_mut(a), None);
        let c = t.insert(CallId(3), "c");
        assert_eq!(c, a, "the freed slot is reused");
        assert_eq!(t.at_mut(c).map(|(id, v)| (id, *v)), Some((CallId(3), "c")));
        assert_eq!(t.get(CallId(2)), Some(&"b"));
        assert_eq!(t.get(CallId(1)), None);
        *t.get_mut(CallId(2)).unwrap() = "B";
        let mut all: Vec<_> = t.iter().map(|(id, v)| (id.0, *v)).collect();
        all.sort_unstable();
        assert_eq!(all, [(2, "B"), (3, "c")]);
        assert_eq!(t.ids().count(), 2);
        assert_eq!(t.iter_mut().count(), 2);
        assert_eq!(t.at_mut(99), None);
    }
}
