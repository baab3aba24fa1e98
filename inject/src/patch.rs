//! JSON-patch (RFC 6902) operations on a Pod, built from typed values.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde::Serialize;
use serde_json::Value;

/// Builds the operations of one patch.
#[derive(Default)]
pub(crate) struct PatchBuilder {
    ops: Vec<PatchOperation>,
}

/// A value could not be turned into JSON (never expected for Kubernetes types).
#[derive(Debug, thiserror::Error)]
#[error("failed to serialize the injected {what} as JSON")]
pub(crate) struct SerializeError {
    what: &'static str,
    #[source]
    source: serde_json::Error,
}

impl PatchBuilder {
    /// `add` of one value at `path` (object member or array position).
    pub(crate) fn add<T: Serialize>(
        &mut self,
        path: &[&str],
        what: &'static str,
        value: &T,
    ) -> Result<(), SerializeError> {
        let value = to_json(what, value)?;
        self.ops.push(add(path, value));
        Ok(())
    }

    /// Puts `items` at the end of the array at `path`, creating it when absent.
    pub(crate) fn append<T: Serialize>(
        &mut self,
        path: &[&str],
        exists: bool,
        what: &'static str,
        items: &[T],
    ) -> Result<(), SerializeError> {
        if items.is_empty() {
            return Ok(());
        }
        if !exists {
            return self.add(path, what, &items);
        }
        for item in items {
            let mut item_path = path.to_vec();
            item_path.push("-");
            self.add(&item_path, what, item)?;
        }
        Ok(())
    }

    /// Puts `item` first in the array at `path`, creating it when absent.
    pub(crate) fn prepend<T: Serialize>(
        &mut self,
        path: &[&str],
        exists: bool,
        what: &'static str,
        item: &T,
    ) -> Result<(), SerializeError> {
        if !exists {
            return self.add(path, what, &[item]);
        }
        let mut first = path.to_vec();
        first.push("0");
        self.add(&first, what, item)
    }

    pub(crate) fn finish(self) -> Vec<PatchOperation> {
        self.ops
    }
}

fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<Value, SerializeError> {
    serde_json::to_value(value).map_err(|source| SerializeError { what, source })
}

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        // from_tokens escapes '/' and '~' (annotation keys contain '/').
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}
