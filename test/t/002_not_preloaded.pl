# CREATE EXTENSION without shared_preload_libraries fails and says exactly
# what to put in postgresql.conf.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
$node->init;
$node->start;
my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION flowdb');
isnt($rc, 0, 'CREATE EXTENSION fails without the preloaded library');
like($err, qr/flowdb must be loaded via shared_preload_libraries/, 'error says why');
like($err, qr/HINT:  Add shared_preload_libraries = 'flowdb' to postgresql.conf/,
	'hint says what to add');
($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM pg_extension WHERE extname = \'flowdb\'');
is($out, '0', 'nothing was installed');

# An invalid setting stops the server with a message naming it and its range.
$node->stop;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'flowdb'\nflowdb.bloom_bits_per_key = 99\n");
ok(!$node->start(fail_ok => 1), 'server refuses an out-of-range flowdb setting');
like(slurp_file($node->logfile), qr/99 is outside the valid range for parameter "flowdb.bloom_bits_per_key" \(1 \.\. 32\)/,
	'message names the setting and the range');
$node->append_conf('postgresql.conf', "flowdb.bloom_bits_per_key = 10\nflowdb.wal_sync_mode = sometimes\n");
ok(!$node->start(fail_ok => 1), 'server refuses an unknown wal_sync_mode');
like(slurp_file($node->logfile), qr/invalid value for parameter "flowdb.wal_sync_mode": "sometimes"/,
	'message names the setting');
$node->append_conf('postgresql.conf', "flowdb.wal_sync_mode = interval\n");
$node->start;
is($node->safe_psql('postgres', 'SHOW flowdb.wal_sync_mode'), 'interval', 'valid settings start');
$node->safe_psql('postgres', "CREATE EXTENSION flowdb; SELECT flowdb.put('k', 1, 'v')");
is($node->safe_psql('postgres', "SELECT convert_from(flowdb.get('k', 1), 'UTF8')"), 'v',
	'works with interval sync');
$node->stop;
done_testing();
