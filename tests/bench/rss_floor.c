/* The RSS floor of a process built like promptd: it links the same
 * libraries (libuv, libcurl, SQLite, jansson) and initialises them as the
 * daemon does at start-up, then waits for stdin to close. bench_load.py
 * reads its RSS next to the idle daemon's: the difference is what promptd
 * itself holds. Shared libraries' pages count in RSS although other
 * processes share them; libcurl alone brings in some thirty. */
#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <uv.h>

int main(void) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || sqlite3_initialize() != SQLITE_OK)
        return 1;
    CURLM *multi = curl_multi_init();
    uv_loop_t *loop = uv_default_loop();
    json_t *doc = json_loads("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 0, NULL);
    if (!multi || !loop || !doc)
        return 1;
    printf("ready\n");
    fflush(stdout);
    while (getchar() != EOF)
        ;
    json_decref(doc);
    curl_multi_cleanup(multi);
    uv_loop_close(loop);
    sqlite3_shutdown();
    curl_global_cleanup();
    return 0;
}
