//! libBentoKS: kernel services with one interface and two implementations (userspace and kernel).

pub mod block;
pub mod log;
pub mod sync;
pub mod time;
