#!/usr/bin/perl

# The C unit tests of the key endpoint's pure decisions (core/vodlms_key.c),
# under prove (t/unit/UnitRun.pm: <build>/unit/test_key; a missing binary
# fails).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use UnitRun;

UnitRun::run('test_key');
