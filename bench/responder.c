/* The ceiling of any FastCGI path: a multi-threaded libfcgi responder that
 * answers home and login with fixed responses, without sessions and
 * without starting a process. Usage: responder SOCKET_PATH THREADS */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int sock;

static void* serve(void* arg) {
  (void)arg;
  FCGX_Request r;
  FCGX_InitRequest(&r, sock, 0);
  char buf[4096];
  while (FCGX_Accept_r(&r) == 0) {
    const char* uri = FCGX_GetParam("SCRIPT_NAME", r.envp);
    while (FCGX_GetStr(buf, sizeof buf, r.in) > 0) {
    }
    if (uri && strstr(uri, "login"))
      FCGX_FPrintF(r.out, "Status: 303 See Other\r\nLocation: home\r\n\r\n");
    else
      FCGX_FPrintF(r.out,
                   "Content-Type: text/html; charset=utf-8\r\n\r\n<!doctype html>\n<title>Home</title>\n"
                   "<p>Anonymous User</p>\n");
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
