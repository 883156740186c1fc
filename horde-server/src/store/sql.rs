//! What the two database engines have in common: statements named by [`Stmt`] (each engine
//! has its own SQL text for each), parameters and results as [`Value`]s, and the [`Sql`]
//! trait through which [`super::apply`], [`super::load`] and [`super::movements`] write and
//! read without knowing which engine is below.

use super::StoreError;

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (`INTEGER` in SQLite, `BIGINT` in PostgreSQL).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (`BLOB`, `BYTEA`).
    Bytes(Vec<u8>),
    /// A flag (an integer 0/1 in SQLite, `BOOLEAN` in PostgreSQL).
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds a parameter list: `params![a, b, c]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::sql::Value::from($value)),*]
    };
}
pub(crate) use params;

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    fn column(&self, index: usize) -> Result<&Value, StoreError> {
        self.0
            .get(index)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {index}")))
    }

    fn wrong(&self, index: usize, wanted: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "column {index} is {:?}, not {wanted}",
            self.0.get(index)
        ))
    }

    /// An integer column.
    pub(crate) fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.opt_int(index)?
            .ok_or_else(|| self.wrong(index, "an integer"))
    }

    /// A non-negative integer column that fits `T`.
    pub(crate) fn uint<T: TryFrom<i64>>(&self, index: usize) -> Result<T, StoreError> {
        T::try_from(self.int(index)?).map_err(|_| self.wrong(index, "a small enough integer"))
    }

    /// An integer column that may be `NULL`.
    pub(crate) fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        match self.column(index)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            _ => Err(self.wrong(index, "an integer")),
        }
    }

    /// A flag column (an integer in SQLite).
    pub(crate) fn flag(&self, index: usize) -> Result<bool, StoreError> {
        match self.column(index)? {
            Value::Bool(v) => Ok(*v),
            Value::Int(v) => Ok(*v != 0),
            _ => Err(self.wrong(index, "a flag")),
        }
    }

    /// A text column.
    pub(crate) fn text(&self, index: usize) -> Result<String, StoreError> {
        self.opt_text(index)?
            .ok_or_else(|| self.wrong(index, "text"))
    }

    /// A text column that may be `NULL`.
    pub(crate) fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.column(index)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(index, "text")),
        }
    }

    /// A bytes column that may be `NULL`.
    pub(crate) fn opt_bytes(&self, index: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.column(index)? {
            Value::Null => Ok(None),
            Value::Bytes(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(index, "bytes")),
        }
    }
}

/// Every statement the store runs. Each engine maps them to its own SQL text, with the
/// parameters in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Stmt {
    // Writes.
    PutUser,
    PutIdempotency,
    PutSession,
    DeleteSession,
    PutIdentity,
    PutRequest,
    SetRequestState,
    PutJob,
    CountMinute,
    DeleteJobsOf,
    DeleteRequest,
    InsertPosting,
    SetAccount,
    SetPolicy,
    PutWorker,
    PutWorkerStats,
    PutSecret,
    EnsureAnonymous,
    // Reads.
    SelectSecret,
    SelectUsers,
    SelectWorkers,
    SelectJobs,
    SelectRequests,
    SelectIdempotency,
    SelectSessions,
    SelectIdentities,
    SelectMinutes,
    SelectMovements,
    SumEarned,
    SumSpent,
}

/// Runs named statements on one connection or transaction.
pub(crate) trait Sql {
    /// Runs a statement that returns no rows.
    fn execute(&mut self, stmt: Stmt, params: &[Value]) -> Result<(), StoreError>;
    /// Runs a query and returns all its rows.
    fn query(&mut self, stmt: Stmt, params: &[Value]) -> Result<Vec<Row>, StoreError>;
}

/// A database engine as the writer thread uses it: statements, transactions, a liveness
/// check while idle, and a clean close.
pub(crate) trait Engine: Sql + Send {
    /// Runs `f` in one transaction, committed if and only if `f` succeeds.
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Checks, while no write is waiting, that the engine can still commit (PostgreSQL: the
    /// connection, and with it the lease, is alive).
    fn check(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Called once when the writer stops.
    fn close(&mut self) {}
}
