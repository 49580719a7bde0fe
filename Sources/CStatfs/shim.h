#ifndef REINDEX_CSTATFS_SHIM_H
#define REINDEX_CSTATFS_SHIM_H
// statfs(2) is not in Swift's Glibc module; f_type tells NFS from ext4.
#include <sys/vfs.h>
#endif
