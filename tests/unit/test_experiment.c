/*
 * test_experiment.c - the experiment split (gateway/experiment.h): the arm
 * of a subject is fixed under a key, the control share matches the holdout
 * within binomial error for several holdouts, and another key assigns
 * independently (about half the subjects agree), so the arms cannot be told
 * from the tokens without the gateway's key.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cgtest.h"
#include "gateway/experiment.h"

static void
test_share(int64_t holdout_nano)
{
	unsigned char key[32], subj[66];
	const int n = 100000;
	double h = (double)holdout_nano / 1e9, sd = sqrt(h * (1 - h) / n);
	int i, control = 0;

	randombytes_buf(key, sizeof(key));
	for (i = 0; i < n; i++) {
		randombytes_buf(subj, sizeof(subj));
		control += experiment_arm(key, subj, holdout_nano) == 0;
	}
	CHECK(fabs((double)control / n - h) < 5 * sd);
}

int
main(void)
{
	unsigned char k1[32], k2[32], subj[66];
	int i, agree = 0, same = 0;

	if (sodium_init() < 0)
		return 1;
	test_share(500000000);
	test_share(200000000);
	test_share(10000000);
	randombytes_buf(k1, sizeof(k1));
	randombytes_buf(k2, sizeof(k2));
	for (i = 0; i < 10000; i++) {
		int a;

		randombytes_buf(subj, sizeof(subj));
		a = experiment_arm(k1, subj, 500000000);
		same += a == experiment_arm(k1, subj, 500000000);
		agree += a == experiment_arm(k2, subj, 500000000);
	}
	CHECK_EQ_INT(same, 10000);
	CHECK(fabs(agree / 10000.0 - 0.5) < 5 * 0.005);
	/* the extremes: holdout 1e-9 puts (almost surely) no one in control, 1 - 1e-9 (almost surely) everyone */
	for (i = 0, same = 0, agree = 0; i < 10000; i++) {
		randombytes_buf(subj, sizeof(subj));
		same += experiment_arm(k1, subj, 1) == 0;
		agree += experiment_arm(k1, subj, 999999999) == 0;
	}
	CHECK_EQ_INT(same, 0);
	CHECK_EQ_INT(agree, 10000);
	CGT_DONE();
}
