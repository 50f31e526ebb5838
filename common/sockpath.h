/* Socket path resolution shared by promptd and promptctl
 * (docs/protocol.md, "Transport"): --socket, PROMPTD_SOCKET,
 * $XDG_RUNTIME_DIR/promptd/promptd.sock, else /tmp/promptd-$UID/promptd.sock
 * ($TMPDIR on macOS). */
#ifndef PROMPTD_SOCKPATH_H
#define PROMPTD_SOCKPATH_H

#include <stddef.h>
#include <sys/types.h>

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

/* Creates the socket's directory (mode 0700, under umask 077) when missing,
 * then checks it, created or found, for every socket path (default or
 * explicit): a real directory (not a symbolic link), owned by us, with no
 * permission for group or others. Returns 0, or -1 with a sentence in err
 * saying what is wrong and what to do. */
int sockpath_prepare_dir(const char *socket_path, char *err, size_t errlen);

/* The uid of the process at the other end of the connected Unix socket fd
 * (SO_PEERCRED, getpeereid elsewhere): the daemon checks its clients, and
 * the clients the daemon, before a byte is exchanged. Returns 0, or -1 with
 * errno set. */
int sockpath_peer_uid(int fd, uid_t *uid);

#endif
