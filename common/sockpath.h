/* Socket path resolution shared by promptd and promptctl
 * (docs/protocol.md, "Transport"): --socket, PROMPTD_SOCKET,
 * $XDG_RUNTIME_DIR/promptd/promptd.sock, else /tmp/promptd-$UID/promptd.sock
 * ($TMPDIR on macOS). */
#ifndef PROMPTD_SOCKPATH_H
#define PROMPTD_SOCKPATH_H

#include <stddef.h>

/* Writes the resolved path into out. explicit_path is the --socket value or
 * NULL; config_path a PROMPTD_SOCKET from a config file or NULL (the
 * environment wins over it). Returns 0, or -1 with a sentence in err when the
 * path does not fit a Unix socket address. */
int sockpath_resolve(const char *explicit_path, const char *config_path, char *out, size_t outlen,
                     char *err, size_t errlen);

/* The path a daemon uses when neither --socket nor PROMPTD_SOCKET says
 * otherwise: where the systemd and launchd services listen. Same return
 * convention as sockpath_resolve. */
int sockpath_default(char *out, size_t outlen, char *err, size_t errlen);

/* Creates the socket's directory (mode 0700) when missing and checks that
 * an existing one belongs to us and is not open to others. Returns 0, or -1
 * with a sentence in err. */
int sockpath_prepare_dir(const char *socket_path, char *err, size_t errlen);

#endif
