/* sdnotify: NOTIFY_SOCKET addresses (paths, abstract names, too long) and
 * one state string delivered to a datagram socket. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"
#include "unit.h"

static void test_address_of_a_path(void) {
    struct sockaddr_un addr;
    socklen_t alen = 0;
    CHECK_INT(sdnotify_address("/run/user/1000/systemd/notify", &addr, &alen), 0);
    CHECK_INT(addr.sun_family, AF_UNIX);
    CHECK_STR(addr.sun_path, "/run/user/1000/systemd/notify");
    CHECK_INT(alen, offsetof(struct sockaddr_un, sun_path) + 29);
}

static void test_address_of_an_abstract_name(void) {
    struct sockaddr_un addr;
    socklen_t alen = 0;
    CHECK_INT(sdnotify_address("@notify", &addr, &alen), 0);
    CHECK(addr.sun_path[0] == '\0');
    CHECK(memcmp(addr.sun_path + 1, "notify", 6) == 0);
    CHECK_INT(alen, offsetof(struct sockaddr_un, sun_path) + 7); /* no terminating NUL */
}

static void test_address_refuses_relative_and_too_long(void) {
    struct sockaddr_un addr;
    socklen_t alen = 0;
    char longest[sizeof addr.sun_path + 1];
    CHECK_INT(sdnotify_address("notify", &addr, &alen), -1);
    CHECK_INT(sdnotify_address("", &addr, &alen), -1);
    memset(longest, 'a', sizeof longest - 1);
    longest[0] = '/';
    longest[sizeof addr.sun_path - 1] = '\0'; /* one byte below: fits with its NUL */
    CHECK_INT(sdnotify_address(longest, &addr, &alen), 0);
    longest[sizeof addr.sun_path - 1] = 'a';
    longest[sizeof addr.sun_path] = '\0'; /* sun_path bytes: no room left */
    CHECK_INT(sdnotify_address(longest, &addr, &alen), -1);
}

static void test_send_delivers_the_state(void) {
    char path[100], got[64];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/promptd-unit-%ld-notify", dir && *dir ? dir : "/tmp",
             (long)getpid());
    unlink(path);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    CHECK(bind(s, (struct sockaddr *)&addr, sizeof addr) == 0);
    setenv("NOTIFY_SOCKET", path, 1);
    sdnotify_send("READY=1\nSTATUS=serving");
    ssize_t n = recv(s, got, sizeof got - 1, MSG_DONTWAIT);
    unsetenv("NOTIFY_SOCKET");
    close(s);
    unlink(path);
    CHECK(n > 0);
    got[n] = '\0';
    CHECK_STR(got, "READY=1\nSTATUS=serving");
}

static void test_send_without_socket_is_a_no_op(void) {
    unsetenv("NOTIFY_SOCKET");
    sdnotify_send("READY=1"); /* must neither crash nor block */
    setenv("NOTIFY_SOCKET", "relative/notify", 1);
    sdnotify_send("READY=1");
    unsetenv("NOTIFY_SOCKET");
    CHECK(1);
}

int main(void) {
    RUN(test_address_of_a_path);
    RUN(test_address_of_an_abstract_name);
    RUN(test_address_refuses_relative_and_too_long);
    RUN(test_send_delivers_the_state);
    RUN(test_send_without_socket_is_a_no_op);
    UNIT_EXIT();
}
