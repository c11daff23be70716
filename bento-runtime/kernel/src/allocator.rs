//! The global allocator of a kernel module: kmalloc, or vmalloc for large sizes, through
//! bentofs (which honours alignment). Failure returns null, which `try_reserve` and friends
//! turn into an error the file system reports as ENOMEM. Tests inject failures here
//! (`bento/bento_fault.h`).

use core::alloc::{GlobalAlloc, Layout};

use crate::ffi;

pub struct KernelAllocator;

/// The tests' allocation-failure injection (`bento/bento_fault.h`, off unless a test sets the
/// module's `fail_alloc_pid`).
fn injected_failure() -> bool {
    // SAFETY: a plain call without arguments, defined in the module's C stub.
    unsafe { ffi::bento_fs_fail_alloc() }
}

// SAFETY: bento_ks_alloc returns memory of at least `size` bytes aligned to `align`, or null;
// bento_ks_free releases exactly what bento_ks_alloc returned.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if injected_failure() {
            return core::ptr::null_mut();
        }
        // SAFETY: plain call; the size and alignment come from a valid Layout.
        unsafe { ffi::bento_ks_alloc(layout.size() as u64, layout.align() as u64, 0) as *mut u8 }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if injected_failure() {
            return core::ptr::null_mut();
        }
        // SAFETY: as alloc.
        unsafe { ffi::bento_ks_alloc(layout.size() as u64, layout.align() as u64, 1) as *mut u8 }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a pointer this allocator returned.
        unsafe { ffi::bento_ks_free(ptr as *mut core::ffi::c_void) }
    }
}
