//! Per-invocation fuel: a budget of Wasm instructions for components with `limits.fuel`.
//!
//! Such components are compiled by the fuel-metering engine (see [`crate::engine`]), where a
//! store starts with no fuel at all, so every store of theirs must be given its budget before
//! the guest runs. What is left at the end says how many instructions ran: about one unit per
//! instruction (wasmtime charges nothing for `nop`, `drop` and block markers).

use wasmtime::{Store, Trap};

/// A component's fuel budget, or none when it runs unmetered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FuelBudget(Option<u64>);

impl FuelBudget {
    pub(crate) fn new(limit: Option<u64>) -> FuelBudget {
        FuelBudget(limit)
    }

    /// Fills a new store's tank. A store of the unmetered engine is left alone.
    pub(crate) fn fill<T>(self, store: &mut Store<T>) -> wasmtime::Result<()> {
        match self.0 {
            Some(fuel) => store.set_fuel(fuel),
            None => Ok(()),
        }
    }

    /// Instructions the store's guest executed, when it was metered.
    pub(crate) fn used<T>(self, store: &Store<T>) -> Option<u64> {
        let budget = self.0?;
        let left = store.get_fuel().ok()?;
        Some(budget.saturating_sub(left))
    }
}

/// Whether a guest failed because it burned its whole budget.
pub(crate) fn ran_out(error: &wasmtime::Error) -> bool {
    error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSettings;

    fn engine(fuel: bool) -> wasmtime::Engine {
        EngineSettings {
            instances: 1,
            max_memory: 1 << 20,
            fuel,
        }
        .build_engine()
        .unwrap()
    }

    /// A loop of `n` iterations, a few instructions each.
    const LOOP: &str = r#"(module
        (func (export "run") (param $n i32)
          (loop $again
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br_if $again (i32.ne (local.get $n) (i32.const 0))))))"#;

    async fn run(
        fuel: FuelBudget,
        engine: &wasmtime::Engine,
        n: i32,
    ) -> (wasmtime::Result<()>, Option<u64>) {
        let module = wasmtime::Module::new(engine, LOOP).unwrap();
        let mut store = Store::new(engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        fuel.fill(&mut store).unwrap();
        let instance = wasmtime::Instance::new_async(&mut store, &module, &[])
            .await
            .unwrap();
        let func = instance
            .get_typed_func::<i32, ()>(&mut store, "run")
            .unwrap();
        let result = func.call_async(&mut store, n).await;
        (result, fuel.used(&store))
    }

    #[tokio::test]
    async fn the_count_grows_with_the_work_done() {
        let engine = engine(true);
        let budget = FuelBudget::new(Some(10_000_000));
        let (small, few) = run(budget, &engine, 1_000).await;
        let (big, many) = run(budget, &engine, 100_000).await;
        small.unwrap();
        big.unwrap();
        let (few, many) = (few.unwrap(), many.unwrap());
        assert!(few >= 1_000, "{few}");
        // A hundred times the iterations, about a hundred times the instructions.
        assert!((90..=110).contains(&(many / few)), "{few} vs {many}");
    }

    #[tokio::test]
    async fn a_guest_past_its_budget_stops_with_out_of_fuel() {
        let engine = engine(true);
        let (result, used) = run(FuelBudget::new(Some(5_000)), &engine, 1_000_000).await;
        let error = result.unwrap_err();
        assert!(ran_out(&error), "{error:?}");
        assert_eq!(used, Some(5_000));
    }

    #[tokio::test]
    async fn unmetered_stores_report_nothing() {
        let engine = engine(false);
        let (result, used) = run(FuelBudget::new(None), &engine, 1_000).await;
        result.unwrap();
        assert_eq!(used, None);
    }
}
