/* Benchmark: promptd's ping round trip against a bare Unix-socket
 * ping-pong measured in the same run, and requests/s with 1, 8 and 32
 * pipelining clients. Usage: bench_rpc PROMPTD_BINARY [ROUNDS]
 * Prints medians and ratios, never a lone absolute time. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PING            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"
#define PIPELINE_WINDOW 64

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int connect_to(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until n newlines have arrived. */
static int read_lines(int fd, int n) {
    char buf[65536];
    while (n > 0) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got <= 0)
            return -1;
        for (ssize_t i = 0; i < got; i++)
            n -= buf[i] == '\n';
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    return v[(int)(p * (n - 1))];
}

/* Round trips of one line, one at a time; fills samples (us). */
static int round_trips(const char *path, int rounds, double *samples) {
    int fd = connect_to(path);
    if (fd < 0)
        return -1;
    for (int i = 0; i < rounds; i++) {
        double t = now_us();
        if (write(fd, PING, sizeof PING - 1) != (ssize_t)(sizeof PING - 1) ||
            read_lines(fd, 1) != 0)
            return -1;
        samples[i] = now_us() - t;
    }
    close(fd);
    qsort(samples, (size_t)rounds, sizeof *samples, cmp_double);
    return 0;
}

/* The baseline: a bare server that answers each line with a fixed line. */
static pid_t start_bare_server(const char *path) {
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0)
        return -1;
    pid_t pid = fork();
    if (pid != 0) {
        close(lfd);
        return pid;
    }
    static const char pong[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"pong\"}\n";
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        char buf[65536];
        ssize_t got;
        while ((got = read(fd, buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < got; i++)
                if (buf[i] == '\n' && write(fd, pong, sizeof pong - 1) < 0)
                    break;
        close(fd);
    }
}

static pid_t start_promptd(const char *binary, const char *path, const char *dir) {
    pid_t pid = fork();
    if (pid == 0) {
        char db[512];
        snprintf(db, sizeof db, "%s/bench.db", dir);
        setenv("LOG_LEVEL", "warn", 1);
        setenv("SQLITE_DB_PATH", db, 1);
        setenv("XDG_CONFIG_HOME", dir, 1);
        execl(binary, binary, "--socket", path, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int fd = connect_to(path);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        usleep(10000);
    }
    return -1;
}

struct load {
    const char *path;
    int requests;
    int ok;
};

/* One pipelining client: keeps PIPELINE_WINDOW pings in flight. */
static void *pipeline_client(void *arg) {
    struct load *l = arg;
    int fd = connect_to(l->path);
    if (fd < 0)
        return NULL;
    char batch[sizeof PING * PIPELINE_WINDOW];
    for (int i = 0; i < PIPELINE_WINDOW; i++)
        memcpy(batch + i * (sizeof PING - 1), PING, sizeof PING - 1);
    size_t batch_len = (sizeof PING - 1) * PIPELINE_WINDOW;
    for (int sent = 0; sent < l->requests; sent += PIPELINE_WINDOW) {
        if (write(fd, batch, batch_len) != (ssize_t)batch_len || read_lines(fd, PIPELINE_WINDOW))
            break;
        l->ok += PIPELINE_WINDOW;
    }
    close(fd);
    return NULL;
}

static double throughput(const char *path, int clients, int per_client) {
    pthread_t t[64];
    struct load l[64];
    double start = now_us();
    for (int i = 0; i < clients; i++) {
        l[i] = (struct load){path, per_client, 0};
        pthread_create(&t[i], NULL, pipeline_client, &l[i]);
    }
    int ok = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        ok += l[i].ok;
    }
    return ok / ((now_us() - start) / 1e6);
}

static void print_machine(void) {
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
    printf("machine: %s, %ld cores\n", model, sysconf(_SC_NPROCESSORS_ONLN));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_rpc PROMPTD_BINARY [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 20000;
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/promptd-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char bare_path[128], pd_path[128];
    snprintf(bare_path, sizeof bare_path, "%s/bare.sock", dir);
    snprintf(pd_path, sizeof pd_path, "%s/promptd.sock", dir);
    pid_t bare = start_bare_server(bare_path), pd = start_promptd(argv[1], pd_path, dir);
    if (bare < 0 || pd < 0) {
        fprintf(stderr, "bench_rpc: cannot start the servers\n");
        return 1;
    }
    double *b = malloc(sizeof *b * (size_t)rounds), *p = malloc(sizeof *p * (size_t)rounds);
    /* Interleave the two measurements so drift hits both alike. */
    round_trips(bare_path, rounds / 10, b); /* warm-up */
    round_trips(pd_path, rounds / 10, p);
    if (round_trips(bare_path, rounds, b) != 0 || round_trips(pd_path, rounds, p) != 0) {
        fprintf(stderr, "bench_rpc: round trips failed\n");
        return 1;
    }
    print_machine();
    printf("ping round trip, %d rounds       p50        p99\n", rounds);
    printf("  bare Unix socket          %7.1f us %7.1f us\n", pct(b, rounds, .5),
           pct(b, rounds, .99));
    printf("  promptd                   %7.1f us %7.1f us\n", pct(p, rounds, .5),
           pct(p, rounds, .99));
    printf("  ratio promptd/bare        %7.2fx   %7.2fx   (target: within 2x)\n",
           pct(p, rounds, .5) / pct(b, rounds, .5), pct(p, rounds, .99) / pct(b, rounds, .99));
    printf("pipelined ping (window %d)   promptd req/s   bare req/s   ratio\n", PIPELINE_WINDOW);
    int clients[] = {1, 8, 32};
    for (int i = 0; i < 3; i++) {
        int per = 200000 / clients[i];
        double rb = throughput(bare_path, clients[i], per);
        double rp = throughput(pd_path, clients[i], per);
        printf("  %2d client(s)            %12.0f %12.0f   %5.2f\n", clients[i], rp, rb, rp / rb);
    }
    fflush(stdout);
    kill(bare, SIGKILL);
    kill(pd, SIGTERM);
    int status;
    waitpid(pd, &status, 0);
    waitpid(bare, NULL, 0);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    free(b);
    free(p);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
