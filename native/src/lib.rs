//! The compiled core of stream-monitor.
//!
//! Pure Rust modules (no Python): drift statistics and their distributions, change detectors
//! and the compact state encoding. `python` binds them as `stream_monitor._native`; every call
//! that loops over values releases the GIL.

pub mod accum;
pub mod adwin;
pub mod binary;
pub mod columns;
pub mod decode;
pub mod detectors;
pub mod features;
pub mod hddm;
pub mod interned;
pub mod join;
pub mod joint;
pub mod mapped;
pub mod model;
pub mod model_state;
pub mod partition;
pub mod pyrepr;
pub mod ranks;
pub mod segment;
pub mod sketch;
pub mod special;
pub mod state;
pub mod stats;
pub mod tally;
pub mod warmup;
pub mod window_acc;
pub mod windows;

#[cfg(feature = "python")]
mod python;
#[cfg(feature = "python")]
mod python_batch;
#[cfg(feature = "python")]
mod python_core;
#[cfg(feature = "python")]
mod python_join;
