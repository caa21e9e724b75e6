# earmark -- top-level build.
#
#   make              the earmark program and the static libearmark-fp, libearmark-db
#   make test         every test (unit, CLI, quality, bad input, small eval)
#   make asan         the same tests built with AddressSanitizer + UBSan
#   make bench        speed benchmark of the fingerprint core
#   make eval         full accuracy evaluation on the real-music corpus
#   make fuzz         libFuzzer harnesses (clang), a short run of each
#   make install PREFIX=/usr/local
#
# Variables: CC, OPT (optimisation flags), SAN=1 (sanitizers), BUILD (object
# folder; sanitizer builds default to build/asan).

CC      ?= cc
OPT     ?= -O3
PREFIX  ?= /usr/local
PKGS    := sndfile fftw3f soxr libmpg123
ifeq ($(SAN),1)
BUILD   ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else
BUILD   ?= build
SANFLAGS :=
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
DB_PKGS    := libpq libcrypto jansson libmicrohttpd
DB_CFLAGS  := $(shell pkg-config --cflags $(DB_PKGS) 2>/dev/null)
DB_LIBS    := $(shell pkg-config --libs $(DB_PKGS) 2>/dev/null)
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(SANFLAGS) -pthread -Ifingerprint -Imatch -Idb -Istore -Icatalog -Ikeys -Iserver -Icli -Iindexer -Ireview -Itests $(PKG_CFLAGS) $(DB_CFLAGS)
LDFLAGS += $(SANFLAGS) -pthread
LDLIBS  += $(PKG_LIBS) -lm

FP_SRC   := fingerprint/fp_error.c fingerprint/fp_config.c fingerprint/fp_decode.c \
            fingerprint/fp_resample.c fingerprint/fp_spectrum.c fingerprint/fp_peaks.c \
            fingerprint/fp_hash.c fingerprint/fp_extract.c fingerprint/fp_score.c \
            fingerprint/fp_sieve.c
DB_SRC   := db/db_conn.c db/db_cluster.c db/db_migrate.c
MATCH_SRC := match/match_store.c match/match_query.c match/match_decide.c
STORE_SRC := store/store_codec.c store/store_write.c store/store_merge.c store/store_lookup.c store/store_gather.c store/store_cache.c \
             catalog/catalog.c catalog/catalog_copies.c keys/keys.c review/review.c review/review_plot.c
SERVER_SRC := server/server_http.c server/server_work.c server/server_policy.c \
              server/server_limits.c server/server_metrics.c server/server_json.c \
              server/server_evidence.c server/server_text.c
IDX_SRC  := indexer/idx_error.c indexer/idx_list.c indexer/idx_manifest.c indexer/idx_walk.c
CLI_SRC  := cli/main.c cli/cli_util.c fingerprint/cmd_fingerprint.c match/cmd_match.c db/cmd_db.c \
            indexer/cmd_index.c catalog/cmd_catalog.c keys/cmd_keys.c \
            server/cmd_serve.c review/cmd_review.c
TEST_SRC := $(wildcard tests/unit/test_*.c)
BENCH_SRC := bench/bench_fp.c
EVAL_SRC := bench/eval/eval.c

FP_OBJ    := $(FP_SRC:%.c=$(BUILD)/%.o)
DB_OBJ    := $(DB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LIBFP     := $(BUILD)/libearmark-fp.a
LIBDB     := $(BUILD)/libearmark-db.a
MATCH_OBJ := $(MATCH_SRC:%.c=$(BUILD)/%.o)
LIBMATCH  := $(BUILD)/libearmark-match.a
STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
LIBSERVER := $(BUILD)/libearmark-server.a
LIBSTORE  := $(BUILD)/libearmark-store.a
IDX_OBJ   := $(IDX_SRC:%.c=$(BUILD)/%.o)
LIBIDX    := $(BUILD)/libearmark-idx.a
EARMARK   := $(BUILD)/earmark

.SECONDARY:
.PHONY: all test asan bench bench-index eval eval-small fuzz install clean deps check-tools
all: $(EARMARK) $(LIBFP) $(LIBMATCH) $(LIBDB) $(LIBSTORE) $(LIBIDX)

$(BUILD)/%.o: %.c fingerprint/earmark_fp.h $(wildcard fingerprint/*.h match/*.h db/*.h store/*.h catalog/*.h keys/*.h server/*.h cli/*.h indexer/*.h review/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBFP): $(FP_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The installed location of the migrations, for db_sql_dir_resolve().
$(BUILD)/db/db_migrate.o: CFLAGS += -DEARMARK_SHARE_DIR='"$(PREFIX)/share/earmark"'

$(LIBMATCH): $(MATCH_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBDB): $(DB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBIDX): $(IDX_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBSTORE): $(STORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBSERVER): $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

LINK_LIBS := $(LIBSERVER) $(LIBIDX) $(LIBSTORE) $(LIBDB) $(LIBMATCH) $(LIBFP)

$(EARMARK): $(CLI_OBJ) $(LINK_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LINK_LIBS) $(LDLIBS) $(DB_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/testlib.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/tests/testlib.o $(LINK_LIBS) $(LDLIBS) $(DB_LIBS)

$(BUILD)/bench_fp: $(BUILD)/bench/bench_fp.o $(LIBFP)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench_store: $(BUILD)/bench/bench_store.o $(LINK_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(LINK_LIBS) $(LDLIBS) $(DB_LIBS)

$(BUILD)/bench_http: $(BUILD)/bench/bench_http.o
	$(CC) $(LDFLAGS) -o $@ $^ -lm

$(BUILD)/eval: $(BUILD)/bench/eval/eval.o $(LIBMATCH) $(LIBFP)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test suite: unit programs, then the shell-driven tests, one summary.
test: all $(TEST_BIN) $(BUILD)/eval
	@BUILD=$(BUILD) sh tests/run.sh

asan:
	$(MAKE) SAN=1 test EVAL_SMALL=0

bench: $(BUILD)/bench_fp
	$(BUILD)/bench_fp $(BENCH_ARGS)

# The store at catalog scale (bench/bench_store.c): ~15 min, ~3 GB in var/bench-store.
.PHONY: bench-store
bench-store: $(BUILD)/bench_store
	$(BUILD)/bench_store $(BENCH_STORE_ARGS)

# the matching service under load, end to end (bench/bench_http.sh)
.PHONY: bench-http
bench-http: all $(BUILD)/bench_http
	BUILD=$(BUILD) sh bench/bench_http.sh

# indexing throughput against fingerprinting alone, same files and threads
bench-index: all
	BUILD=$(BUILD) sh bench/bench_index.sh

eval: all $(BUILD)/eval
	BUILD=$(BUILD) sh bench/eval/run.sh full

eval-small: all $(BUILD)/eval
	BUILD=$(BUILD) sh bench/eval/run.sh small

fuzz:
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(EARMARK) $(DESTDIR)$(PREFIX)/bin/earmark
	install -m 644 $(LIBFP) $(DESTDIR)$(PREFIX)/lib/libearmark-fp.a
	install -m 644 fingerprint/earmark_fp.h $(DESTDIR)$(PREFIX)/include/earmark_fp.h
	install -m 644 $(LIBDB) $(DESTDIR)$(PREFIX)/lib/libearmark-db.a
	install -m 644 $(LIBMATCH) $(DESTDIR)$(PREFIX)/lib/libearmark-match.a
	install -m 644 match/em_match.h $(DESTDIR)$(PREFIX)/include/em_match.h
	install -m 644 db/em_db.h $(DESTDIR)$(PREFIX)/include/em_db.h
	install -d $(DESTDIR)$(PREFIX)/share/earmark/sql
	install -m 644 sql/*.sql $(DESTDIR)$(PREFIX)/share/earmark/sql

deps:
	sh scripts/deps

clean:
	rm -rf build
