pub mod affinity;
pub mod distributed;
pub mod pipeline;
