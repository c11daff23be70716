//! logfs.ko's Rust half: logfs over the kernel's block devices, exported to bentofs as the
//! operation table `logfs_rust_ops` that `logfs_main.c` registers.
#![no_std]

bento_kernel::declare_kernel_fs!(
    logfs_rust_ops,
    logfs::LogFs<bento_kernel::KernelBlockDevice>
);
