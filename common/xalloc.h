/* promptd's out-of-memory policy: every heap allocation of the daemon and
 * of promptctl goes through these wrappers, which never return NULL. When
 * the system cannot give a few bytes more, no answer a person could act on
 * is possible anyway, and the untested recovery branches that a NULL check
 * at every call site would add are worse than a clear message and an
 * abort (tmux's xmalloc and redis's zmalloc take the same stance). SQLite
 * keeps its own allocator and reports SQLITE_NOMEM as a storage error;
 * jansson is routed here by xalloc_install_jansson. */
#ifndef PROMPTD_XALLOC_H
#define PROMPTD_XALLOC_H

#include <stddef.h>

/* Each returns memory the caller owns and frees with free(). */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes jansson allocate through xmalloc; call once before any json_*. */
void xalloc_install_jansson(void);

#endif
