/* activation: LISTEN_PID/LISTEN_FDS parsing, adopting fd 3, and naming the
 * socket a service manager passed (or refusing one its unit got wrong). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "unit.h"

static void test_count_needs_our_pid(void) {
    CHECK_INT(activation_passed_count("42", "1", 42), 1);
    CHECK_INT(activation_passed_count("42", "3", 42), 3);
    CHECK_INT(activation_passed_count("43", "1", 42), 0); /* meant for another process */
    CHECK_INT(activation_passed_count(NULL, "1", 42), 0);
    CHECK_INT(activation_passed_count("42", NULL, 42), 0);
}

static void test_count_rejects_malformed(void) {
    CHECK_INT(activation_passed_count("42x", "1", 42), 0);
    CHECK_INT(activation_passed_count("42", "1 ", 42), 0);
    CHECK_INT(activation_passed_count("42", "", 42), 0);
    CHECK_INT(activation_passed_count("42", "0", 42), 0);
    CHECK_INT(activation_passed_count("42", "-1", 42), 0);
}

static void set_env(const char *pid, const char *fds) {
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", fds, 1);
    setenv("LISTEN_FDNAMES", "promptd.socket", 1);
}

static void test_listen_fd_unsets_variables_meant_for_others(void) {
    set_env("1", "1"); /* init's pid, never ours */
    CHECK_INT(activation_listen_fd(), -1);
    CHECK(getenv("LISTEN_PID") == NULL);
    CHECK(getenv("LISTEN_FDS") == NULL);
    CHECK(getenv("LISTEN_FDNAMES") == NULL);
}

static void test_listen_fd_without_variables(void) {
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    CHECK_INT(activation_listen_fd(), -1);
}

/* A listening Unix socket at path, moved to fd 3 as systemd would pass it. */
static int listen_on_fd3(const char *path, int type, int do_listen) {
    int s = socket(AF_UNIX, type, 0);
    if (s < 0)
        return -1;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    unlink(path);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || (do_listen && listen(s, 1) != 0)) {
        close(s);
        return -1;
    }
    if (s != 3) {
        if (dup2(s, 3) < 0)
            return -1;
        close(s);
    }
    return 3;
}

static void tmp_path(char *out, size_t outlen, const char *name) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, outlen, "%s/promptd-unit-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             name);
}

static void test_listen_fd_adopts_fd3_and_names_it(void) {
    char path[100], pid[32], name[128], err[256];
    tmp_path(path, sizeof path, "act.sock");
    CHECK_INT(listen_on_fd3(path, SOCK_STREAM, 1), 3);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    set_env(pid, "1");
    int fd = activation_listen_fd();
    CHECK_INT(fd, 3);
    CHECK(getenv("LISTEN_PID") == NULL);
    CHECK_INT(activation_socket_name(fd, name, sizeof name, err, sizeof err), 0);
    CHECK_STR(name, path);
    close(3);
    unlink(path);
}

static void test_listen_fd_with_fd3_closed(void) {
    char pid[32];
    close(3);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    set_env(pid, "1");
    CHECK_INT(activation_listen_fd(), -1);
}

static void test_name_refuses_accept_yes(void) {
    char path[100], name[128], err[256];
    tmp_path(path, sizeof path, "nolisten.sock");
    CHECK_INT(listen_on_fd3(path, SOCK_STREAM, 0), 3);
    CHECK_INT(activation_socket_name(3, name, sizeof name, err, sizeof err), -1);
    CHECK(strstr(err, "Accept=yes") != NULL);
    close(3);
    unlink(path);
}

static void test_name_refuses_datagram(void) {
    char path[100], name[128], err[256];
    tmp_path(path, sizeof path, "dgram.sock");
    CHECK_INT(listen_on_fd3(path, SOCK_DGRAM, 0), 3);
    CHECK_INT(activation_socket_name(3, name, sizeof name, err, sizeof err), -1);
    CHECK(strstr(err, "not a Unix stream socket") != NULL);
    close(3);
    unlink(path);
}

static void test_name_refuses_a_pipe(void) {
    int p[2];
    char name[128], err[256];
    CHECK(pipe(p) == 0);
    CHECK_INT(activation_socket_name(p[0], name, sizeof name, err, sizeof err), -1);
    CHECK(strstr(err, "ListenStream=") != NULL);
    close(p[0]);
    close(p[1]);
}

#ifdef __linux__
static void test_name_of_abstract_socket(void) {
    char name[128], err[256];
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n =
        snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "promptd-unit-%ld", (long)getpid());
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    CHECK(bind(s, (struct sockaddr *)&addr, alen) == 0);
    CHECK(listen(s, 1) == 0);
    CHECK_INT(activation_socket_name(s, name, sizeof name, err, sizeof err), 0);
    CHECK(name[0] == '@');
    CHECK_STR(name + 1, addr.sun_path + 1);
    close(s);
}
#endif

int main(void) {
    RUN(test_count_needs_our_pid);
    RUN(test_count_rejects_malformed);
    RUN(test_listen_fd_unsets_variables_meant_for_others);
    RUN(test_listen_fd_without_variables);
    RUN(test_listen_fd_adopts_fd3_and_names_it);
    RUN(test_listen_fd_with_fd3_closed);
    RUN(test_name_refuses_accept_yes);
    RUN(test_name_refuses_datagram);
    RUN(test_name_refuses_a_pipe);
#ifdef __linux__
    RUN(test_name_of_abstract_socket);
#endif
    UNIT_EXIT();
}
