#!/bin/sh
# End-to-end run of the four example programs on a tiny generated data set:
# each must succeed, print its tutorial figures and end with a JSON line;
# the pictures, history and model files must appear.
# usage: run_examples.sh GENERATOR EXAMPLES_BIN_DIR WORK_DIR
set -eu
gen=$1; bin=$2; work=$3
rm -rf "$work"
mkdir -p "$work/data" "$work/out"
"$gen" "$work/data" 120
common="--data $work/data --out $work/out --epochs 2 --seed 7"
for ex in simple_autoencoder deep_autoencoder conv_autoencoder; do
    "$bin/$ex" $common > "$work/$ex.log"
    grep -q '^predict: (36, 784)$' "$work/$ex.log"
    grep -q 'Total params' "$work/$ex.log"
    grep -q '^Epoch 2: ' "$work/$ex.log"
    tail -n 1 "$work/$ex.log" | grep -q "^{\"example\": \"$ex\", \"epochs\": 2, .*\"test_bce\": "
    test -s "$work/out/${ex}_reconstructions.png"
    test -s "$work/out/${ex}_history.csv"
    test -s "$work/out/$ex.aem"
done
test -s "$work/out/conv_autoencoder_code.png"
for backend in balltree brute hnsw; do
    "$bin/image_retrieval" $common --backend $backend --show 2 > "$work/retrieval_$backend.log"
    grep -q '^query .* (clock): the 10 nearest training drawings$' "$work/retrieval_$backend.log"
    tail -n 1 "$work/retrieval_$backend.log" | grep -q "^{\"example\": \"image_retrieval\", \"backend\": \"$backend\""
done
ls "$work/out"/retrieval_clock_*.png > /dev/null
# the PCA baseline in the same run: as many components as the code (128) by
# default, --pca N otherwise, in the table and the JSON line
grep -q '^| PCA-128 (' "$work/retrieval_brute.log"
tail -n 1 "$work/retrieval_brute.log" | grep -q '"pca": {"components": 128, "test_bce": [0-9.]*,'
"$bin/image_retrieval" $common --show 0 --pca 8 > "$work/retrieval_pca8.log"
tail -n 1 "$work/retrieval_pca8.log" | grep -q '"pca": {"components": 8,'
"$bin/image_retrieval" $common --show 0 --pca 0 > "$work/retrieval_nopca.log"
if tail -n 1 "$work/retrieval_nopca.log" | grep -q '"pca"'; then exit 1; fi
# the denoising autoencoder: noisy inputs, clean targets, a 3-row picture
"$bin/denoising_autoencoder" $common --filters 4 > "$work/denoising.log"
grep -q '^test BCE against the clean drawings: noisy inputs [0-9.]*, denoised [0-9.]*' "$work/denoising.log"
tail -n 1 "$work/denoising.log" | grep -q '^{"example": "denoising_autoencoder", "epochs": 2, '
test -s "$work/out/denoising_autoencoder.png"
# the sparse autoencoder: trained without and with the L1 activity regulariser
"$bin/sparse_autoencoder" $common > "$work/sparse.log"
grep -q '^mean code activation of the test drawings: [0-9.]* without the regulariser, [0-9.]* with l1 = 0.0001' "$work/sparse.log"
tail -n 1 "$work/sparse.log" | grep -q '^{"example": "sparse_autoencoder", "plain": {"l1": 0, "epochs": 2, .*"sparse": {"l1": 0.0001, "epochs": 2, .*"mean_code_activation": '
test -s "$work/out/sparse_autoencoder_reconstructions.png"
test -s "$work/out/sparse_autoencoder_plain_reconstructions.png"
test -s "$work/out/sparse_autoencoder.aem"
# the variational autoencoder: KL term reported, latent scatter and decoded grid
"$bin/variational_autoencoder" $common --hidden 16 > "$work/vae.log"
grep -q '^test: BCE [0-9.]* (reconstructions from the means), KL [0-9.]* per drawing' "$work/vae.log"
tail -n 1 "$work/vae.log" | grep -q '^{"example": "variational_autoencoder", "epochs": 2, .*"kl_per_row": [0-9.]*, "kl_weight": 0.00127551, "seconds": '
test -s "$work/out/variational_autoencoder_latent.png"
test -s "$work/out/variational_autoencoder_grid.png"
test -s "$work/out/variational_autoencoder.aem"
# without a saved model, image_retrieval trains one first
rm "$work/out/conv_autoencoder.aem"
"$bin/image_retrieval" $common --show 1 > "$work/retrieval_train.log"
grep -q 'training the conv autoencoder first' "$work/retrieval_train.log"
test -s "$work/out/conv_autoencoder.aem"
# the retrieval-grade preset, the tutorial's model scored in the same run
"$bin/image_retrieval" $common --show 0 --preset conv_bn8 \
    --compare "$work/out/conv_autoencoder.aem" > "$work/retrieval_bn8.log"
grep -q 'training the conv_bn8 autoencoder first' "$work/retrieval_bn8.log"
test -s "$work/out/conv_bn8_autoencoder.aem"
grep -q "^| $work/out/conv_autoencoder.aem (4385 parameters) | 128 | " "$work/retrieval_bn8.log"
tail -n 1 "$work/retrieval_bn8.log" |
    grep -q '"code_floats": 32, .*"pca": {"components": 32, .*"compare": {"code_floats": 128, .*"trained": {"preset": "conv_bn8", "epochs": 2, '
echo "examples end to end: ok"
