// libpq from Debian's libpq-dev (pkg-config `libpq`). Only PostgresSource.swift imports it.
// No wrappers are needed: the libpq calls the job uses are neither variadic nor macros.
#include <libpq-fe.h>
