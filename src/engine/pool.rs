//! The run's memory pool: DataFusion's fair spill pool, with headroom kept for memory that
//! cannot spill.
//!
//! In DataFusion's `FairSpillPool` every spilling consumer (a sort's buffer, an aggregate's
//! table) may grow to an equal share of all the memory not held by unspillable ones, so
//! together they can fill the pool; an unspillable reservation that comes later (a sort taking
//! back its merge reservation after a spill, a hash join's build, a Parquet writer's buffer)
//! then finds nothing left and fails the query, although the spillers would have spilled.
//! TPC-H's `lineitem_enriched` at SF 10 failed so under 1 GiB: four sorts spilled in turn and
//! one could not take back its merge memory. Here spillers share the pool less a headroom, so
//! unspillable memory can always grow by that much before any spiller must give way. The
//! headroom is at most half of what unspillable memory leaves: many sorts' merge reservations
//! can hold most of a small pool, and spillers must still get something.

use datafusion::common::human_readable_size;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use std::sync::Mutex;

#[derive(Debug)]
pub struct HeadroomPool {
    size: usize,
    headroom: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    spillers: usize,
    spillable: usize,
    unspillable: usize,
}

impl HeadroomPool {
    /// A pool of `size` bytes, of which spilling consumers leave up to `headroom` free.
    pub fn new(size: usize, headroom: usize) -> Self {
        Self {
            size,
            headroom: headroom.min(size),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is three counters, consistent after any panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// DataFusion's wording, which `memory::exhausted` reads the operator and size from.
    fn refused(
        &self,
        reservation: &MemoryReservation,
        wanted: usize,
        available: usize,
    ) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "Failed to allocate additional {} for {} with {} already allocated for this reservation - {} remain available for the total memory pool: {self}",
            human_readable_size(wanted),
            reservation.consumer().name(),
            human_readable_size(reservation.size()),
            human_readable_size(available),
        ))
    }
}

impl std::fmt::Display for HeadroomPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "weir(pool_size: {}, headroom: {})",
            human_readable_size(self.size),
            human_readable_size(self.headroom)
        )
    }
}

impl MemoryPool for HeadroomPool {
    fn name(&self) -> &str {
        "weir"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            self.state().spillers += 1;
        }
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            let mut state = self.state();
            state.spillers = state.spillers.saturating_sub(1);
        }
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        let mut state = self.state();
        match reservation.consumer().can_spill() {
            true => state.spillable += additional,
            false => state.unspillable += additional,
        }
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let mut state = self.state();
        match reservation.consumer().can_spill() {
            true => state.spillable = state.spillable.saturating_sub(shrink),
            false => state.unspillable = state.unspillable.saturating_sub(shrink),
        }
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let mut state = self.state();
        if reservation.consumer().can_spill() {
            let free = self.size.saturating_sub(state.unspillable);
            // Never more than half of what unspillable memory leaves, or spillers starve.
            let shared = free - self.headroom.min(free / 2);
            let share = shared / state.spillers.max(1);
            // One holding nothing has nothing to spill to make room, and refused it fails its
            // query: it may take what spillers leave free, beyond its share. Shares count
            // every registered spiller, most of them idle (a repartition holds a batch at a
            // time), so there usually is some.
            let first = reservation.size() == 0 && state.spillable + additional <= shared;
            if reservation.size() + additional > share && !first {
                return Err(self.refused(reservation, additional, share));
            }
            state.spillable += additional;
        } else {
            let available = self
                .size
                .saturating_sub(state.unspillable + state.spillable);
            if additional > available {
                return Err(self.refused(reservation, additional, available));
            }
            state.unspillable += additional;
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        let state = self.state();
        state.spillable + state.unspillable
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.size)
    }
}
