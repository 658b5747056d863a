# es_pg: build, install and test with PGXS.
#
#   make                    build the module and the install script
#   make install            install into the PostgreSQL that PG_CONFIG names
#   make installcheck       regression, isolation and TAP tests against a
#                           running server (scripts/test.sh sets one up)
#
# New C files, SQL fragments and tests are picked up by name; see README.md.

EXTENSION	= es_pg
EXTVERSION	= $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big	= es_pg
OBJS		= $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
# crypto-shredding calls OpenSSL's EVP interface (src/privkeys.c)
SHLIB_LINK	+= -lcrypto

# Install scripts.  The script of a released version is frozen:
# sql/es_pg--X.Y.Z.sql is committed and never edited again, and the next
# version comes with a hand-written upgrade script sql/es_pg--A--B.sql.  The
# script of a version under development (default_version in es_pg.control
# without a frozen script) is assembled from the fragments in sql/src/, in
# name order, into build/.  While default_version is a released version,
# `make` checks that the fragments still assemble to its frozen script, so a
# change to them cannot slip into a released version unnoticed.
SQL_SOURCES	= $(sort $(wildcard sql/src/*.sql))
UPGRADES	= $(wildcard sql/$(EXTENSION)--*--*.sql)
FROZEN		= $(filter-out $(UPGRADES),$(wildcard sql/$(EXTENSION)--*.sql))
CURRENT_FROZEN = $(wildcard sql/$(EXTENSION)--$(EXTVERSION).sql)
DATA		= $(FROZEN) $(UPGRADES)
ifeq ($(CURRENT_FROZEN),)
DATA_built	= build/$(EXTENSION)--$(EXTVERSION).sql
endif

# Regression tests: test/sql/<name>.sql with test/expected/<name>.out.
REGRESS		= $(sort $(basename $(notdir $(wildcard test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test
# Isolation specs: test/specs/<name>.spec with test/expected/<name>.out.
ISOLATION	= $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test
# TAP tests: test/t/*.pl, each with clusters of its own.
TAP_TESTS	= 1
PROVE_TESTS	= $(sort $(wildcard test/t/*.pl))

EXTRA_CLEAN	= build results output_iso tmp_check regression.diffs regression.out log

PG_CONFIG	?= pg_config
# no LLVM bitcode: JIT does not inline extension code we ship anyway
override with_llvm = no
PGXS		:= $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object is rebuilt when a header changes (PGXS tracks no header
# dependencies unless PostgreSQL was configured with --enable-depend)
$(OBJS): $(wildcard src/*.h)

build/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) $(EXTENSION).control
	mkdir -p build
	cat $(SQL_SOURCES) > $@

all: check-frozen
.PHONY: check-frozen
check-frozen:
ifneq ($(CURRENT_FROZEN),)
	@cat $(SQL_SOURCES) | cmp -s - $(CURRENT_FROZEN) || { \
		echo "sql/src/ no longer assembles to $(CURRENT_FROZEN), which is released and frozen."; \
		echo "Raise default_version in $(EXTENSION).control and write the upgrade script"; \
		echo "sql/$(EXTENSION)--$(EXTVERSION)--<new version>.sql (see CHANGELOG.md)."; \
		exit 1; }
endif

# Targets that run only some kinds of tests against a running server.
.PHONY: installcheck-regress installcheck-isolation installcheck-tap pgindent
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
installcheck-tap:
	$(prove_installcheck)

pgindent:
	pgindent --typedefs=typedefs.list src/*.c src/*.h
