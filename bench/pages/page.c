/* The benchmark's page, one program for every peer that runs pages:
 * sessiond, fcgiwrap and Apache mod_session (as CGI). What it does depends on
 * the name it is run under:
 *   home   shows the session's UserName (from HTTP_SESSION), HTML-escaped
 *   login  stores the posted UserName (X-Replace-Session, which sessiond and
 *          mod_session's SessionHeader both take) and redirects home
 *   slow   sleeps 50 ms, then does what home does
 * Without a session (fcgiwrap) it shows "Anonymous User". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static void home(void) {
  char name[256];
  fputs("Content-Type: text/html; charset=utf-8\r\n\r\n<!doctype html>\n<title>Home</title>\n", stdout);
  if (!item(getenv("HTTP_SESSION"), "UserName", name, sizeof name)) {
    fputs("<p>Anonymous User</p>\n", stdout);
    return;
  }
  fputs("<p>Hello, <b>", stdout);
  for (const char* c = name; *c; ++c) {
    switch (*c) {
      case '&': fputs("&amp;", stdout); break;
      case '<': fputs("&lt;", stdout); break;
      case '>': fputs("&gt;", stdout); break;
      case '"': fputs("&quot;", stdout); break;
      default: putchar(*c);
    }
  }
  fputs("</b>.</p>\n", stdout);
}

static void login(void) {
  char body[1024] = "";
  const char* len = getenv("CONTENT_LENGTH");
  size_t want = len ? (size_t)atol(len) : 0, got = 0;
  if (want >= sizeof body) want = sizeof body - 1;
  while (got < want) {
    ssize_t n = read(0, body + got, want - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  body[got] = 0;
  /* Keep the form's percent-encoding: it is what X-Replace-Session takes. */
  char* v = strstr(body, "UserName=");
  if (!v) {
    fputs("Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nno UserName\n", stdout);
    return;
  }
  v += 9;
  v[strcspn(v, "&\r\n")] = 0;
  printf("Status: 303 See Other\r\nLocation: home\r\nX-Replace-Session: UserName=%s\r\n\r\n", v);
}

int main(int argc, char** argv) {
  (void)argc;
  const char* name = strrchr(argv[0], '/');
  name = name ? name + 1 : argv[0];
  if (strcmp(name, "login") == 0) {
    login();
  } else {
    if (strcmp(name, "slow") == 0) {
      struct timespec t = {0, 50 * 1000 * 1000};
      nanosleep(&t, NULL);
    }
    home();
  }
  return 0;
}
