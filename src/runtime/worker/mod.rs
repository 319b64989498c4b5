//! Workers: the per-queue dequeue loops of this process.

pub mod queue;
