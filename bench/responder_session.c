/* The benchmark's C page as a persistent FastCGI application behind
 * `sessiond serve --app`: a multi-threaded libfcgi responder that reads the
 * session sessiond injects and writes it with X-Session-Set. By SCRIPT_NAME:
 *   home   shows the session's UserName (from HTTP_SESSION), HTML-escaped
 *   login  stores the posted UserName and redirects home
 *   slow   sleeps 50 ms, then does what home does
 * Usage: responder_session SOCKET_PATH THREADS */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int sock;

static int hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes the value of `key` in "k=v&k=v" into out; 0 when absent. */
static int item(const char* text, const char* key, char* out, size_t size) {
  size_t klen = strlen(key);
  for (const char* p = text; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
    if (strncmp(p, key, klen) != 0 || p[klen] != '=') continue;
    size_t n = 0;
    for (p += klen + 1; *p && *p != '&' && n + 1 < size; ++p) {
      if (*p == '%' && hex(p[1]) >= 0 && hex(p[2]) >= 0) {
        out[n++] = (char)(hex(p[1]) * 16 + hex(p[2]));
        p += 2;
      } else {
        out[n++] = *p == '+' ? ' ' : *p;
      }
    }
    out[n] = 0;
    return 1;
  }
  return 0;
}

static void home(FCGX_Request* r) {
  char name[256];
  FCGX_PutS("Content-Type: text/html; charset=utf-8\r\n\r\n<!doctype html>\n<title>Home</title>\n", r->out);
  if (!item(FCGX_GetParam("HTTP_SESSION", r->envp), "UserName", name, sizeof name)) {
    FCGX_PutS("<p>Anonymous User</p>\n", r->out);
    return;
  }
  FCGX_PutS("<p>Hello, <b>", r->out);
  for (const char* c = name; *c; ++c) {
    switch (*c) {
      case '&': FCGX_PutS("&amp;", r->out); break;
      case '<': FCGX_PutS("&lt;", r->out); break;
      case '>': FCGX_PutS("&gt;", r->out); break;
      case '"': FCGX_PutS("&quot;", r->out); break;
      default: FCGX_PutChar(*c, r->out);
    }
  }
  FCGX_PutS("</b>.</p>\n", r->out);
}

static void login(FCGX_Request* r, char* body) {
  /* Keep the form's percent-encoding: it is what X-Session-Set takes. */
  char* v = strstr(body, "UserName=");
  if (!v) {
    FCGX_PutS("Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nno UserName\n", r->out);
    return;
  }
  v += 9;
  v[strcspn(v, "&\r\n")] = 0;
  FCGX_FPrintF(r->out, "Status: 303 See Other\r\nLocation: home\r\nX-Session-Set: UserName=%s\r\n\r\n", v);
}

static void* serve(void* arg) {
  (void)arg;
  FCGX_Request r;
  FCGX_InitRequest(&r, sock, 0);
  char body[1024];
  while (FCGX_Accept_r(&r) == 0) {
    const char* uri = FCGX_GetParam("SCRIPT_NAME", r.envp);
    int n = FCGX_GetStr(body, (int)sizeof body - 1, r.in);
    body[n > 0 ? n : 0] = 0;
    char rest[4096];
    while (FCGX_GetStr(rest, sizeof rest, r.in) > 0) {
    }
    if (uri && strstr(uri, "login")) {
      login(&r, body);
    } else {
      if (uri && strstr(uri, "slow")) {
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
      }
      home(&r);
    }
    FCGX_Finish_r(&r);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FCGX_Init();
  signal(SIGTERM, SIG_DFL); /* libfcgi's handler only sets a flag; the harness stops us with SIGTERM */
  umask(0);
  sock = FCGX_OpenSocket(argv[1], 1024);
  if (sock < 0) return 1;
  int n = atoi(argv[2]);
  pthread_t t[256];
  for (int i = 0; i < n && i < 256; ++i) pthread_create(&t[i], NULL, serve, NULL);
  for (int i = 0; i < n && i < 256; ++i) pthread_join(t[i], NULL);
  return 0;
}
