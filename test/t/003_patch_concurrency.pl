# patch() under concurrency: no lost updates.  Several clients patch the same
# JSON record at once, each adding its own members; afterwards every member
# must be there (a read-modify-write without the record lock would lose some).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();

my $clients = 4;
my $per_client = 30;

my $node = PostgreSQL::Test::Cluster->new('patch');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'flowdb'\nlog_statement = none\n");
$node->start;
$node->safe_psql('postgres',
	"CREATE EXTENSION flowdb; SELECT flowdb.put('doc', 1, convert_to('{}', 'UTF8'))");

my @pids;
for my $c (1 .. $clients)
{
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		open STDOUT, '>', '/dev/null';
		for my $i (1 .. $per_client)
		{
			# a little work between read and write widens any race window
			system('psql', '-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
				'-c', "BEGIN; SELECT flowdb.patch('doc', 1, convert_to('{\"c${c}_$i\": true}', 'UTF8'));"
				  . " SELECT pg_sleep(0.002); COMMIT;");
		}
		POSIX::_exit(0);
	}
	push @pids, $pid;
}
waitpid($_, 0) for @pids;

my $n = $node->safe_psql('postgres',
	"SELECT count(*) FROM jsonb_object_keys(convert_from(flowdb.get('doc', 1), 'UTF8')::jsonb)");
is($n, $clients * $per_client, 'every concurrent patch survived');
$node->stop;
done_testing();
