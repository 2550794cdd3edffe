/* fuzz_front.c: libFuzzer target for the lmnc front end: any bytes go through the lexer, parser and
 * semantic checks; valid networks are also lowered to the IR and printed in every format. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "front.h"
#include "ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *null;
  if (!null) null = fopen("/dev/null", "w");
  Front f;
  if (front_load_mem(&f, "fuzz.lmn", (const char *)data, size, null) == 0) {
    Ir ir;
    ir_build(&ir, &f.net);
    ir_print_text(&ir, null);
    ir_print_json(&ir, null);
    ir_print_info(&ir, null, 3, 17);
    ir_print_dot(&ir, null);
    ir_free(&ir);
  }
  front_free(&f);
  return 0;
}
