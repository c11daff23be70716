//! libBentoKS: kernel services with one interface, in userspace (`std`) and in the kernel
//! (the backend `bento-kernel` installs, see [`host`]).

pub mod block;
pub mod host;
pub mod log;
pub mod sync;
pub mod time;
