//! Logging: kernel log lines in the kernel, standard error in userspace.
//!
//! Use the macros: `bento_api::error!("...")`, `warn!`, `info!`, `debug!`.

use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

#[cfg(feature = "std")]
mod sink {
    use core::sync::atomic::{AtomicU8, Ordering};

    static MAX_LEVEL: AtomicU8 = AtomicU8::new(super::Level::Info as u8);

    pub fn set_max_level(level: super::Level) {
        MAX_LEVEL.store(level as u8, Ordering::Relaxed);
    }

    pub fn write(level: super::Level, args: core::fmt::Arguments<'_>) {
        if level as u8 <= MAX_LEVEL.load(Ordering::Relaxed) {
            std::eprintln!("{}: {}", level.as_str(), args);
        }
    }
}

/// Without `std`: the installed backend's log (kernel log lines), or nowhere.
#[cfg(not(feature = "std"))]
mod sink {
    use core::sync::atomic::{AtomicU8, Ordering};

    static MAX_LEVEL: AtomicU8 = AtomicU8::new(super::Level::Info as u8);

    pub fn set_max_level(level: super::Level) {
        MAX_LEVEL.store(level as u8, Ordering::Relaxed);
    }

    pub fn write(level: super::Level, args: core::fmt::Arguments<'_>) {
        if level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
            && let Some(h) = crate::ks::host::get()
        {
            h.log(level, args);
        }
    }
}

/// Messages above `level` are dropped.
pub fn set_max_level(level: Level) {
    sink::set_max_level(level)
}

#[doc(hidden)]
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    sink::write(level, args)
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::ks::log::log($crate::ks::log::Level::Error, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::ks::log::log($crate::ks::log::Level::Warn, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::ks::log::log($crate::ks::log::Level::Info, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::ks::log::log($crate::ks::log::Level::Debug, format_args!($($arg)*)) };
}
