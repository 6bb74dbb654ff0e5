/* A persistent FastCGI application behind sessiond, for the end-to-end tests
 * and the benchmark: a multi-threaded libfcgi responder that reads the
 * session sessiond injects and changes it with sessiond's response headers.
 *
 *   responder SOCKET [THREADS]     listens on the unix socket SOCKET (made
 *                                  0666), THREADS requests at once (default 32)
 *
 * Paths (DOCUMENT_URI, else SCRIPT_NAME):
 *   /login, /home, /logout   the demo of sample_pages/, as an application
 *   /set?k=v                 X-Session-Set: k=v
 *   /get                     the session's text as HTTP_SESSION holds it
 *                            (joined from its chunks when it is too large
 *                            for one parameter)
 *   /echo                    the request body, back
 *   /warn                    a line on FCGI_STDERR quoting HTTP_COOKIE
 *   /big?n=N                 N bytes of body, with X-Session-Set: big=1
 *   /slow?ms=N               waits N ms for sessiond, with X-Session-Set:
 *                            slow=1; when sessiond closes the connection
 *                            meanwhile it says so on its own stderr
 *                            ("slow: the connection was closed") and answers
 *                            nothing
 *   /stats                   connections=C requests=R: connections accepted
 *                            and requests served so far
 * Threads share the listening socket without a lock: a thread keeps a
 * connection sessiond asked to keep (FCGI_KEEP_CONN) for its next request,
 * so a lock around accept would let one idle kept connection stop them all. */
#include <fcgiapp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

static int listen_fd;
static atomic_long connections, requests;

static const char *param(FCGX_Request *r, const char *name) {
  const char *v = FCGX_GetParam(name, r->envp);
  return v ? v : "";
}

/* Writes HTTP_SESSION's text: the parameter itself, or, for a session too
 * large for one FastCGI record, its pieces SESSION_CHUNK_1 ... SESSION_CHUNK_N
 * (N in SESSION_CHUNKS) in order, as sessiond sends it then. */
static void put_session(FCGX_Request *r) {
  const char *chunks = FCGX_GetParam("SESSION_CHUNKS", r->envp);
  if (!chunks) {
    FCGX_PutS(param(r, "HTTP_SESSION"), r->out);
    return;
  }
  long n = strtol(chunks, NULL, 10);
  for (long i = 1; i <= n; i++) {
    char name[48];
    snprintf(name, sizeof name, "SESSION_CHUNK_%ld", i);
    FCGX_PutS(param(r, name), r->out);
  }
}

/* The value of query parameter `name` (as sent, still percent-encoded). */
static void query_value(const char *query, const char *name, char *out, size_t size) {
  size_t n = strlen(name);
  out[0] = 0;
  for (const char *p = query; *p;) {
    if (strncmp(p, name, n) == 0 && p[n] == '=') {
      size_t i = 0;
      for (p += n + 1; *p && *p != '&' && i + 1 < size; p++) out[i++] = *p;
      out[i] = 0;
      return;
    }
    p = strchr(p, '&');
    if (!p) return;
    p++;
  }
}

static void html_escaped(FCGX_Stream *out, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '&': FCGX_PutS("&amp;", out); break;
      case '<': FCGX_PutS("&lt;", out); break;
      case '>': FCGX_PutS("&gt;", out); break;
      case '"': FCGX_PutS("&quot;", out); break;
      case '\'': FCGX_PutS("&#39;", out); break;
      default: FCGX_PutChar(*s, out);
    }
  }
}

/* The body, up to `size` - 1 bytes. */
static size_t read_body(FCGX_Request *r, char *buf, size_t size) {
  size_t got = 0;
  int n;
  while (got + 1 < size && (n = FCGX_GetStr(buf + got, (int)(size - 1 - got), r->in)) > 0) got += (size_t)n;
  buf[got] = 0;
  return got;
}

static void login(FCGX_Request *r) {
  if (strcmp(param(r, "REQUEST_METHOD"), "POST") == 0) {
    char body[4096], name[1024], clean[1024];
    size_t j = 0;
    read_body(r, body, sizeof body);
    query_value(body, "UserName", name, sizeof name);
    /* Only what a percent-encoding holds: nothing can end the header line. */
    for (const char *p = name; *p && j + 1 < sizeof clean; p++)
      if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%+._~*-", *p)) clean[j++] = *p;
    clean[j] = 0;
    if (!j) {
      FCGX_PutS("Status: 303 See Other\r\nLocation: /login\r\n\r\n", r->out);
      return;
    }
    FCGX_FPrintF(r->out, "Status: 303 See Other\r\nLocation: /home\r\nX-Session-Set: UserName=%s\r\n"
                         "X-Session-Regenerate: 1\r\n\r\n", clean);
    return;
  }
  FCGX_PutS("Content-Type: text/html; charset=utf-8\r\n\r\n<!doctype html>\n<title>Log in</title>\n"
            "<form method=\"post\" action=\"/login\">\n"
            "  <label>User name <input name=\"UserName\" autofocus required></label>\n"
            "  <button>Log in</button>\n</form>\n", r->out);
}

static void home(FCGX_Request *r) {
  const char *name = param(r, "SESSION_VAR_UserName");
  FCGX_PutS("Content-Type: text/html; charset=utf-8\r\n\r\n<!doctype html>\n<title>Home</title>\n", r->out);
  if (*name) {
    FCGX_PutS("<p>Hello, <b>", r->out);
    html_escaped(r->out, name);
    FCGX_PutS("</b>.</p>\n<p><a href=\"/logout\">Log out</a></p>\n", r->out);
  } else {
    FCGX_PutS("<p>Anonymous User</p>\n<p><a href=\"/login\">Log in</a></p>\n", r->out);
  }
}

static void slow(FCGX_Request *r) {
  char ms[32];
  query_value(param(r, "QUERY_STRING"), "ms", ms, sizeof ms);
  /* sessiond sent the whole request: the connection is readable again only
   * when it closes it (or sends another request, which it never does before
   * this one is answered). */
  char drain[4096];
  while (FCGX_GetStr(drain, sizeof drain, r->in) > 0) {
  }
  struct pollfd p = {r->ipcFd, POLLIN, 0};
  if (poll(&p, 1, atoi(ms)) > 0) {
    char c;
    if (recv(r->ipcFd, &c, 1, MSG_PEEK) <= 0) {
      fprintf(stderr, "slow: the connection was closed\n");
      return;
    }
  }
  FCGX_PutS("Content-Type: text/plain\r\nX-Session-Set: slow=1\r\n\r\nslow done\n", r->out);
}

static void serve(FCGX_Request *r) {
  const char *path = param(r, "DOCUMENT_URI");
  if (!*path) path = param(r, "SCRIPT_NAME");
  const char *query = param(r, "QUERY_STRING");
  if (strcmp(path, "/login") == 0) return login(r);
  if (strcmp(path, "/home") == 0) return home(r);
  if (strcmp(path, "/logout") == 0) {
    FCGX_PutS("Status: 303 See Other\r\nLocation: /login\r\nX-Session-Abandon: 1\r\n\r\n", r->out);
    return;
  }
  if (strcmp(path, "/set") == 0) {
    FCGX_FPrintF(r->out, "Content-Type: text/plain\r\nX-Session-Set: %s\r\n\r\nset\n", query);
    return;
  }
  if (strcmp(path, "/get") == 0) {
    FCGX_PutS("Content-Type: text/plain\r\n\r\n", r->out);
    put_session(r);
    return;
  }
  if (strcmp(path, "/echo") == 0) {
    char buf[65536];
    int n;
    FCGX_PutS("Content-Type: application/octet-stream\r\n\r\n", r->out);
    while ((n = FCGX_GetStr(buf, sizeof buf, r->in)) > 0) FCGX_PutStr(buf, n, r->out);
    return;
  }
  if (strcmp(path, "/warn") == 0) {
    FCGX_FPrintF(r->err, "warn: the cookie was %s\n", param(r, "HTTP_COOKIE"));
    FCGX_PutS("Content-Type: text/plain\r\n\r\nwarned\n", r->out);
    return;
  }
  if (strcmp(path, "/big") == 0) {
    char n[32], chunk[4096];
    query_value(query, "n", n, sizeof n);
    memset(chunk, 'x', sizeof chunk);
    FCGX_PutS("Content-Type: text/plain\r\nX-Session-Set: big=1\r\n\r\n", r->out);
    for (long left = atol(n); left > 0; left -= (long)sizeof chunk)
      if (FCGX_PutStr(chunk, left < (long)sizeof chunk ? (int)left : (int)sizeof chunk, r->out) < 0) return;
    return;
  }
  if (strcmp(path, "/slow") == 0) return slow(r);
  if (strcmp(path, "/stats") == 0) {
    FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nconnections=%ld requests=%ld\n", atomic_load(&connections),
                 atomic_load(&requests));
    return;
  }
  FCGX_FPrintF(r->out, "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno %s here\n", path);
}

static void *worker(void *unused) {
  (void)unused;
  FCGX_Request r;
  FCGX_InitRequest(&r, listen_fd, 0);
  ino_t last = 0;
  while (FCGX_Accept_r(&r) == 0) {
    /* A new connection is a new socket inode; a kept one is the same. */
    struct stat st;
    if (fstat(r.ipcFd, &st) == 0 && st.st_ino != last) {
      last = st.st_ino;
      atomic_fetch_add(&connections, 1);
    }
    atomic_fetch_add(&requests, 1);
    serve(&r);
    FCGX_Finish_r(&r);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: responder SOCKET [THREADS]\n");
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 32;
  if (threads < 1) threads = 1;
  signal(SIGPIPE, SIG_IGN); /* sessiond may close a connection mid-answer */
  setvbuf(stderr, NULL, _IOLBF, 0);
  FCGX_Init();
  mode_t old = umask(0);
  listen_fd = FCGX_OpenSocket(argv[1], 128);
  umask(old);
  if (listen_fd < 0) {
    fprintf(stderr, "responder: cannot listen on %s\n", argv[1]);
    return 1;
  }
  /* SIGTERM and SIGINT end it at once, whatever libfcgi's own handlers
   * would do: the workers never see them, this thread waits for them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  pthread_t id;
  for (int i = 0; i < threads; i++) pthread_create(&id, NULL, worker, NULL);
  fprintf(stderr, "responder: listening on %s with %d threads\n", argv[1], threads);
  int sig = 0;
  sigwait(&stop, &sig);
  return 0;
}
