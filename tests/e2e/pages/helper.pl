#!/usr/bin/perl
# The Perl helper's page for tests/e2e/helpers.sh: as tests/e2e/pages/helper.
use strict;
use warnings;
use lib '/usr/share/sessiond/perl';
use Sessiond;
use JSON::PP ();

my $s = Sessiond->new;
my $op = $ENV{QUERY_STRING} // '';
binmode STDIN;
binmode STDOUT;
read STDIN, my $in, $ENV{CONTENT_LENGTH} || 0;
my @form = map { my ($n, $v) = split /=/, $_, 2; [Sessiond::decode($n), Sessiond::decode($v // '')] } split /&/, $in // '';
my @keys = map { $_->[1] } grep { $_->[0] eq 'k' } @form;
my @values = map { $_->[1] } grep { $_->[0] eq 'v' } @form;
my $body = '';
if ($op eq 'set') { $s->set($keys[$_] => $values[$_]) for 0 .. $#keys }
elsif ($op eq 'set_json') { $s->set_json($keys[$_] => JSON::PP->new->utf8->allow_nonref->decode($values[$_])) for 0 .. $#keys }
elsif ($op eq 'set_json_string') { $s->set_json($keys[$_] => $values[$_]) for 0 .. $#keys }  # a form field's bytes
elsif ($op eq 'remove') { $s->remove($_) for @keys }
elsif ($op eq 'clear') { $s->clear }
elsif ($op eq 'regenerate') { $s->regenerate }
elsif ($op eq 'abandon') { $s->abandon }
elsif ($op eq 'get') { $body .= sprintf "%s %s\n", $s->type($_) // 'none', unpack('H*', $s->text($_, '')) for @keys }
elsif ($op eq 'count') {
    my $n = ($s->get('visits') // 0) + 1;
    $s->set(visits => $n);
    $body = "perl $n\n";
}
elsif ($op eq 'status') {
    $body = sprintf "status=%s\nmode=%s\nwritable=%s\nfrom=%s\n", $s->status, $s->mode,
        $s->writable ? 'yes' : 'no', $ENV{SESSION_FILE} ? 'file' : 'env';
}
print "Content-Type: text/plain\r\n", $s->headers, "\r\n", $body;
