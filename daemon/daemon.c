#include "daemon.h"

uint64_t daemon_now_ms(void) {
    return uv_hrtime() / 1000000;
}
