/*
 * /kaniko/executor and /kaniko/warmer: the entry points of kiln's executor image.
 *
 * A scratch image has no shell, so the entry point is this small static program. It needs
 * nothing from `/`: with `--isolation none` kiln extracts the base image into `/`, which
 * replaces /lib and /usr/lib under the running executor. It starts the node in /kaniko/bin
 * (whose ELF interpreter and library path point into /kaniko/lib) on kiln's entry script
 * with one command, `kiln build` or `kiln warm`, chosen when the launcher is compiled:
 *
 *   /kaniko/executor ARGS...  ->  /kaniko/bin/node /kaniko/kiln/kiln.js build ARGS...
 *
 * kiln itself trusts the certificates SSL_CERT_FILE and SSL_CERT_DIR name (/kaniko/ssl/certs
 * in the image) next to node's built-in list, the way kaniko (Go) reads them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KILN_COMMAND
#error "compile with -DKILN_COMMAND='\"build\"' or -DKILN_COMMAND='\"warm\"'"
#endif
#ifndef KILN_NODE
#define KILN_NODE "/kaniko/bin/node"
#endif
#ifndef KILN_ENTRY
#define KILN_ENTRY "/kaniko/kiln/kiln.js"
#endif

int main(int argc, char **argv) {
  static char *const head[] = { KILN_NODE, KILN_ENTRY, KILN_COMMAND };
  const int count = sizeof head / sizeof head[0];
  char **args = calloc((size_t)count + (size_t)argc, sizeof *args);
  if (args == NULL) {
    fputs("kiln: out of memory\n", stderr);
    return 127;
  }
  memcpy(args, head, sizeof head);
  for (int i = 1; i < argc; i++) args[count + i - 1] = argv[i];
  execv(KILN_NODE, args);
  fprintf(stderr, "kiln: cannot start %s: %s\n", KILN_NODE, strerror(errno));
  return 127;
}
