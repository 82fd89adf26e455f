# lakefuse build. `make` builds build/lakefuse; `make test` installs what is
# missing, builds (normal and sanitizer) and runs every test; `make demo`
# shows lakefuse against real lakeFS v1.84.0 (local blockstore), built on
# first use by scripts/third-party.sh.

VERSION     := 0.1.0
CC          ?= cc
PKGS        := fuse3 libcurl libcjson yaml-0.1 libcrypto libxxhash
PYTHON      := /usr/bin/python3
BUILD       := build
ASAN_BUILD  := $(BUILD)/asan
TSAN_BUILD  := $(BUILD)/tsan

PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARNINGS    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -Wmissing-prototypes -Wformat=2
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -DLAKEFUSE_VERSION='"$(VERSION)"' \
               $(WARNINGS) -Iinclude -Isrc $(PKG_CFLAGS)
CFLAGS      ?= -O2 -g
SAN_FLAGS   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=all
TSAN_FLAGS  := -O1 -g -fsanitize=thread
LIBS        := $(PKG_LIBS) -lpthread -lm

# The lakeFS client library: no FUSE in it.
CLIENT_SRCS := src/strbuf.c src/lakefs_http.c src/lakefs_json.c \
               src/lakefs_models.c src/lakefs_refs.c src/lakefs_objects.c
CLIENT_SRCS += src/lakefs_outcome.c
CLIENT_SRCS += src/lakefs_policy.c
CLIENT_SRCS += src/jsonnul.c
APP_SRCS    := src/config.c src/uri.c src/target.c src/listing.c src/metacache.c \
               src/blockcache.c src/blockfd.c src/fetchbuf.c src/reader.c src/staging.c src/staging_journal.c src/log.c src/listings.c src/tree.c src/control.c src/control_write.c src/workflow.c \
               src/fs_ops.c src/fs_write.c src/fs_rename.c src/fs_attr.c src/fs_times.c src/fs_readers.c src/writer.c src/writer_names.c src/writer_pool.c src/durable.c src/upload.c src/recover.c src/cli.c src/cli_control.c src/mount.c
APP_SRCS    += src/entryset.c src/strset.c
APP_SRCS += src/flatwalk.c
APP_SRCS    += src/prefetch.c
APP_SRCS    += src/urlbatch.c src/fs_source.c
APP_SRCS    += src/eager_upload.c src/warm.c src/textfield.c
MAIN_SRC    := src/main.c
UNIT_TESTS  := test_json test_errors test_strbuf test_config test_uri \
               test_listing test_metacache test_blockcache test_reader test_mount_options test_staging \
               test_fs_times
UNIT_TESTS  += test_cli
UNIT_TESTS  += test_http_policy
UNIT_TESTS  += test_strset
UNIT_TESTS  += test_durable
UNIT_TESTS  += test_textfield
TOOL_SRCS   := tests/client/client_exercise.c

HEADERS     := $(wildcard include/*.h src/*.h tests/unit/*.h)

# objects of a source list in a build dir: $(call objs,DIR,SRCS)
objs = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: fuzz fuzz-smoke
.PHONY: all deps test test-unit test-integration test-real demo clean sanitize tsan format

all: $(BUILD)/lakefuse $(BUILD)/client_exercise \
     $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

$(ASAN_BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/liblakefs.a: $(call objs,$(BUILD),$(CLIENT_SRCS))
	ar rcs $@ $^

$(ASAN_BUILD)/liblakefs.a: $(call objs,$(ASAN_BUILD),$(CLIENT_SRCS))
	ar rcs $@ $^

$(TSAN_BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(TSAN_FLAGS) -c $< -o $@

$(TSAN_BUILD)/lakefuse: $(call objs,$(TSAN_BUILD),$(MAIN_SRC) $(APP_SRCS) $(CLIENT_SRCS))
	$(CC) $(TSAN_FLAGS) $^ $(LIBS) -o $@

$(BUILD)/lakefuse: $(call objs,$(BUILD),$(MAIN_SRC) $(APP_SRCS)) $(BUILD)/liblakefs.a
	$(CC) $(CFLAGS) $^ $(LIBS) -o $@

$(BUILD)/client_exercise: $(call objs,$(BUILD),$(TOOL_SRCS) $(APP_SRCS)) $(BUILD)/liblakefs.a
	$(CC) $(CFLAGS) $^ $(LIBS) -o $@

$(ASAN_BUILD)/lakefuse: $(call objs,$(ASAN_BUILD),$(MAIN_SRC) $(APP_SRCS)) $(ASAN_BUILD)/liblakefs.a
	$(CC) $(SAN_FLAGS) $^ $(LIBS) -o $@

$(ASAN_BUILD)/client_exercise: $(call objs,$(ASAN_BUILD),$(TOOL_SRCS) $(APP_SRCS)) $(ASAN_BUILD)/liblakefs.a
	$(CC) $(SAN_FLAGS) $^ $(LIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(call objs,$(BUILD),$(APP_SRCS)) $(BUILD)/liblakefs.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ $(LIBS) -lcmocka -o $@

$(ASAN_BUILD)/tests/%: $(ASAN_BUILD)/obj/tests/unit/%.o $(call objs,$(ASAN_BUILD),$(APP_SRCS)) $(ASAN_BUILD)/liblakefs.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $^ $(LIBS) -lcmocka -o $@

# The same code with AddressSanitizer and UBSan.
sanitize: $(ASAN_BUILD)/lakefuse $(ASAN_BUILD)/client_exercise $(addprefix $(ASAN_BUILD)/tests/,$(UNIT_TESTS))

# The daemon with ThreadSanitizer (make test runs the mount tests of its
# threads on it: scripts/run-tests.sh).
tsan: $(TSAN_BUILD)/lakefuse

# libFuzzer targets (fuzz/*.c): the parsers of untrusted input, with clang's
# -fsanitize=fuzzer,address,undefined. `make fuzz-smoke` runs each for
# FUZZ_SECONDS (part of `make test`); scripts/fuzz.sh SECONDS runs longer.
FUZZ_CC      := clang
FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all
FUZZ_SECONDS ?= 8
FUZZ_TARGETS := json_models error_body uri config_yaml listing staging_journal
FUZZ_SRCS    := $(CLIENT_SRCS)
FUZZ_SRCS    += src/uri.c
FUZZ_SRCS    += src/config.c
FUZZ_SRCS    += src/listing.c
FUZZ_SRCS    += src/staging_journal.c

$(FUZZ_BUILD)/obj/%.o: %.c $(HEADERS) fuzz/fuzz.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libfuzzed.a: $(call objs,$(FUZZ_BUILD),$(FUZZ_SRCS))
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz/%.o $(FUZZ_BUILD)/libfuzzed.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ $(LIBS) -o $@

fuzz: $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))

fuzz-smoke: fuzz
	@scripts/fuzz.sh $(FUZZ_SECONDS)

deps:
	@scripts/install-deps.sh

test: deps
	@$(MAKE) --no-print-directory all sanitize tsan
	@scripts/run-tests.sh

test-unit: all sanitize
	@scripts/run-tests.sh unit

# The client, mount and SDK suites against real lakeFS v1.84.0 (local and S3 blockstores), built once
# per machine by scripts/third-party.sh, one after the other at full lengths (make test runs them
# side by side, the differential test shorter; tests/REALSERVER.md).
test-real: deps
	@$(MAKE) --no-print-directory all sanitize
	@scripts/run-tests.sh real

# Real lakeFS (scripts/demo.sh builds it on first use: ~4.5 min here); leaves nothing running.
demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

# lakefuse against rclone, s3fs and the limit on real lakeFS with an S3 store (bench/bench.py; not part
# of `make test`): writes docs/bench/results.{md,json,png}. BENCH_SCALE=medium (the default: about
# 20 minutes here), small (a few minutes) or full (the issue's sizes: hours, README "Performance");
# BENCH_ROUNDS=N, BENCH_PEER_ROUNDS=N (peers in the first N rounds), BENCH_TIMEOUT=seconds per run.
.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/third-party.sh lakefs
	@scripts/bench-peers.sh
	@$(PYTHON) bench/bench.py

format:
	clang-format -i src/*.c src/*.h include/*.h tests/unit/*.c tests/client/*.c

clean:
	rm -rf $(BUILD)

# Micro-benchmark of the listing cache (prints ns per insert; not in `make test`).
.PHONY: bench-metacache
bench-metacache: $(BUILD)/bench_metacache
	$(BUILD)/bench_metacache
$(BUILD)/bench_metacache: $(BUILD)/obj/tests/unit/bench_metacache.o $(call objs,$(BUILD),$(APP_SRCS)) $(BUILD)/liblakefs.a
	$(CC) $(CFLAGS) $^ $(LIBS) -o $@
