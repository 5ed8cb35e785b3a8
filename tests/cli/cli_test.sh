#!/bin/sh
# The autoenc command end to end, on data generated here (tests/cmake/cli.cmake).
# usage: cli_test.sh SECTION AUTOENC HELPER GENERATOR WORK_DIR SOURCE_DIR
#   setup      generate the data, train and index a small model (the fixture)
#   commands   every subcommand's normal use, text and --json
#   errors     exit status and message of each kind of mistake
#   roundtrip  train -> encode -> index build -> search agrees with the library
#   png        PNG input: grey conversion, --invert, alpha, padding, resizing
#   progress   the progress line on a terminal (script(1)), none in a pipe
#   manpage    docs/autoenc.1 renders cleanly and documents every option
#   installed  the runtime install (bin/autoenc, lib, man page) works alone
# Exit 0 = pass, 77 = skipped (a tool this section needs is missing).
set -eu
section=$1 A=$2 H=$3 GEN=$4 W=$5 SRC=$6
D=$W/data          # book.npy clock.npy star.npy, 120 uint8 28x28 drawings each
M=$W/conv.aem      # conv preset, 2 epochs on $D
S=$W/$section      # this section's own files (sections run in parallel)

fail() {
    echo "FAIL ($section): $*" >&2
    exit 1
}

# expect STATUS PATTERN CMD...: CMD exits with STATUS and its stderr matches
# the grep pattern PATTERN.
expect() {
    want=$1 pat=$2
    shift 2
    set +e
    "$@" > "$S/out.txt" 2> "$S/err.txt"
    got=$?
    set -e
    if [ "$got" -ne "$want" ]; then
        cat "$S/out.txt" "$S/err.txt" >&2
        fail "exit status $got, expected $want: $*"
    fi
    if ! grep -q -e "$pat" "$S/err.txt"; then
        cat "$S/err.txt" >&2
        fail "stderr does not match '$pat': $*"
    fi
}

# ids_of JSON_FILE: "ID DISTANCE" per neighbour of autoenc search --json
ids_of() {
    grep -o '"id": [-0-9]*, "distance": [^,]*' "$1" |
        sed 's/"id": \([-0-9]*\), "distance": \(.*\)/\1 \2/'
}

if [ "$section" = setup ]; then
    rm -rf "$W"
    mkdir -p "$D"
    "$GEN" "$D" 120
    "$A" train --data "$D" --model conv --epochs 2 --seed 7 --quiet --out "$M"
    "$A" encode --model "$M" --data "$D" --out "$W/codes.npy" --labels-out "$W/labels.npy" --quiet
    "$A" index build --codes "$W/codes.npy" --labels "$W/labels.npy" --out "$W/ball.aei" --quiet
    echo "cli setup: ok"
    exit 0
fi
[ -s "$M" ] || fail "no fixture: run the cli_setup test first"
rm -rf "$S"
mkdir -p "$S"

case $section in
commands)
    "$A" --help | grep -q '^usage: autoenc COMMAND'
    "$A" --version | grep -q '^autoenc [0-9]'
    for cmd in train encode "index build" search info reconstruct; do
        # shellcheck disable=SC2086  # "index build" is two words
        "$A" $cmd --help > "$S/help.txt"
        grep -q "^usage: autoenc $cmd" "$S/help.txt" || fail "$cmd --help"
    done
    "$A" help index | grep -q '^usage: autoenc index build'
    "$A" help train | grep -q -e '--validation-split'

    # train: a preset with --json (one object per epoch, then the result)
    "$A" train --data "$D" --model simple --epochs 2 --batch 16 --json --out "$S/simple.aem" > "$S/train.json"
    [ "$(grep -c '"type": "epoch"' "$S/train.json")" -eq 2 ] || fail "train --json epochs"
    grep -q '"type": "train", .*"parameters": 50992, "rows": 360, "train_rows": 288, "validation_rows": 72, "epochs_run": 2, "kept_epoch": 2' "$S/train.json" ||
        fail "train --json result"
    # a spec in quotes, a spec file with comments, early stopping
    "$A" train --data "$D" --model "input 784; dense 16 relu; code; dense 784 sigmoid" --epochs 1 \
        --quiet --out "$S/spec.aem"
    "$A" info "$S/spec.aem" | grep -q 'spec        input 784; dense 16 relu; code; dense 784 sigmoid'
    printf '# a small conv model\ninput 28x28x1\nconv 4 3 same relu; pool same  # 14x14x4\ncode\nup\nconv 1 3 same sigmoid\n' > "$S/small.spec"
    "$A" train --data "$D" --model "@$S/small.spec" --epochs 3 --patience 1 --min-delta 10 --json \
        --out "$S/small.aem" > "$S/small.json"
    grep -q '"epochs_run": 2, "kept_epoch": 1, "best_epoch": 1, "stopped_early": true' "$S/small.json" ||
        fail "early stopping with --patience"
    # the spec autoenc info prints rebuilds the same model
    spec=$("$A" info "$M" | sed -n 's/^  spec        //p')
    "$A" train --data "$D" --model "$spec" --epochs 1 --quiet --out "$S/respec.aem"
    "$A" info --json "$S/respec.aem" | grep -q '"parameters": 4385'
    # the layers beyond the tutorial's, and their spec back from info
    bn="input 28x28x1; noise 0.3 clip; conv 4 3 stride=2 same leaky_relu=0.2; bn; flatten; dense 8"
    bn="$bn; activity 1e-4 0.002; code; dense 196 elu; reshape 7x7x4; mask 0.1; convt 4 4 stride=2 same tanh; bn 0.9 1e-3"
    bn="$bn; dropout 0.1; act softplus; convt 1 3 stride=2 same sigmoid"
    "$A" train --data "$D" --model "$bn" --epochs 1 --quiet --out "$S/bn.aem"
    "$A" info "$S/bn.aem" | grep -q 'spec        input 28x28x1; noise 0.3 clip; conv 4 3 stride=2 same leaky_relu=0.2; bn; flatten; dense 8 linear; activity 0.0001 0.002; code; dense 196 elu; reshape 7x7x4; mask 0.1; convt 4 4 stride=2 same tanh; bn 0.9 0.001; dropout 0.1; act softplus; convt 1 3 stride=2 same sigmoid' ||
        fail "info spec of the new layers"
    spec=$("$A" info "$S/bn.aem" | sed -n 's/^  spec        //p')
    "$A" train --data "$D" --model "$spec" --epochs 1 --quiet --out "$S/respec.aem"
    [ "$("$A" info --json "$S/respec.aem" | grep -o '"parameters": [0-9]*')" = \
      "$("$A" info --json "$S/bn.aem" | grep -o '"parameters": [0-9]*')" ] || fail "the new layers' spec rebuilds the model"
    # a variational autoencoder: the sampling layer is the code
    vae="input 784; dense 16 relu; dense 4; sampling 0.25; code; dense 784 sigmoid"
    "$A" train --data "$D" --model "$vae" --epochs 1 --quiet --out "$S/vae.aem"
    "$A" info "$S/vae.aem" | grep -q 'spec        input 784; dense 16 relu; dense 4 linear; sampling 0.25; code; dense 784 sigmoid' ||
        fail "info spec of a sampling layer"
    # data as .npy files (uint8, and float32 of shape (N, 28, 28)), options
    "$H" f32 "$D/star.npy" "$S/star_f32.npy"
    "$A" train --data "$D/book.npy" --data "$S/star_f32.npy" --model simple --epochs 1 \
        --optimizer sgd --lr 0.1 --loss mse --validation-split 0 --threads 1 --per-category 50 \
        --seed 3 --json --out "$S/mixed.aem" > "$S/mixed.json"
    grep -q '"rows": 100, "train_rows": 100, "validation_rows": 0' "$S/mixed.json" || fail "mixed data"
    grep -q '"val_loss": null' "$S/mixed.json" || fail "no validation: val_loss null"
    # checkpoints: 1 epoch with --checkpoint, then --resume to 3 == 3 epochs in one run
    "$A" train --data "$D" --model simple --epochs 3 --batch 16 --threads 1 \
        --checkpoint "$S/full.aeckpt" --quiet --out "$S/full.aem"
    "$A" train --data "$D" --model simple --epochs 1 --batch 16 --threads 1 \
        --checkpoint "$S/part.aeckpt" --checkpoint-steps 5 --quiet --out "$S/part.aem"
    "$A" info "$S/part.aeckpt" | grep -q 'position    1 epochs done' || fail "info on a checkpoint"
    "$A" info --json "$S/part.aeckpt" |
        grep -q '"kind": "checkpoint", "format_version": 1, "checksum": "ok", "epochs_done": 1, "step": 0, "parameters": 50992' ||
        fail "info --json on a checkpoint"
    "$A" train --data "$D" --epochs 3 --batch 16 --threads 1 --resume "$S/part.aeckpt" \
        --quiet --out "$S/resumed.aem"
    cmp "$S/full.aem" "$S/resumed.aem" || fail "--resume does not continue the run exactly"
    "$A" info --json "$S/part.aeckpt" | grep -q '"epochs_done": 3' || fail "--resume updates the checkpoint"
    expect 1 "already holds 3 epochs" "$A" train --data "$D" --epochs 3 --resume "$S/part.aeckpt" --out "$S/x.aem"
    # SIGTERM mid-run writes the checkpoint at its step; resuming it to E epochs
    # gives the model of an uninterrupted E-epoch run
    "$A" train --data "$D" --model simple --epochs 1000000 --batch 16 --threads 1 --json \
        --checkpoint "$S/int.aeckpt" --out "$S/int.aem" > "$S/int.json" 2> "$S/int.err" &
    pid=$!
    tries=0
    until grep -q '"type": "epoch"' "$S/int.json" 2> /dev/null; do
        tries=$((tries + 1))
        [ $tries -lt 600 ] || { kill $pid; fail "training never reached its first epoch"; }
        sleep 0.1
    done
    kill -TERM $pid
    set +e
    wait $pid
    got=$?
    set -e
    [ $got -eq 130 ] || fail "SIGTERM during a checkpointed training: exit status $got"
    grep -q "holds the run (epoch .*continue with --resume $S/int.aeckpt" "$S/int.err" ||
        fail "no checkpoint message after SIGTERM"
    done_epochs=$("$A" info --json "$S/int.aeckpt" | sed -n 's/.*"epochs_done": \([0-9]*\).*/\1/p')
    total=$((done_epochs + 2))
    "$A" train --data "$D" --epochs $total --batch 16 --threads 1 --resume "$S/int.aeckpt" \
        --quiet --out "$S/int.aem"
    "$A" train --data "$D" --model simple --epochs $total --batch 16 --threads 1 \
        --checkpoint "$S/ref.aeckpt" --quiet --out "$S/ref.aem"
    cmp "$S/int.aem" "$S/ref.aem" || fail "resuming after SIGTERM differs from an uninterrupted run"

    # encode: a category folder is its files in name order, rows in file order
    "$A" encode --model "$M" --data "$D" --out "$S/codes.npy" --json > "$S/encode.json"
    grep -q '"rows": 360, "code_size": 128, "categories": 3' "$S/encode.json" || fail "encode --json"
    "$A" encode --model "$M" --data "$D/book.npy" --data "$D/clock.npy" --data "$D/star.npy" \
        --out "$S/codes_files.npy" --quiet
    cmp "$S/codes.npy" "$S/codes_files.npy" || fail "a folder and its files in order differ"
    "$A" info --json "$S/codes.npy" | grep -q '"kind": "npy", "dtype": "float32", "shape": \[360, 128\]'
    "$A" info --json "$W/labels.npy" | grep -q '"shape": \[360\]'

    # index build: every backend and metric
    for b in brute balltree hnsw; do
        "$A" index build --codes "$W/codes.npy" --labels "$W/labels.npy" --backend $b \
            --out "$S/$b.aei" --json > "$S/index.json"
        grep -q "\"backend\": \"$b\", \"metric\": \"l2\", \"count\": 360, \"dim\": 128, \"labels\": true" "$S/index.json" ||
            fail "index build --backend $b"
        "$A" info "$S/$b.aei" | grep -q "backend     $b, metric l2"
    done
    "$A" index build --codes "$W/codes.npy" --metric cosine --backend hnsw --hnsw-m 8 \
        --ef-construction 50 --ef-search 20 --seed 1 --out "$S/cos.aei" --quiet
    "$A" info --json "$S/cos.aei" | grep -q '"metric": "cosine", .*"labels": false, .*"hnsw_m": 8, "ef_construction": 50, "ef_search": 20, "seed": 1'
    "$A" index build --codes "$W/codes.npy" --leaf-size 5 --out "$S/leaf.aei" --quiet
    "$A" info "$S/leaf.aei" | grep -q 'leaf_size   5'
    "$A" index build --codes "$W/codes.npy" --metric inner-product --out "$S/ip.aei" --quiet
    "$A" info --json "$S/ip.aei" | grep -q '"metric": "inner-product"'

    # index add and delete: every backend, in place and to --out
    for b in brute balltree hnsw; do
        "$A" index add --index "$S/$b.aei" --codes "$W/codes.npy" --labels "$W/labels.npy" \
            --first-id 1000 --out "$S/${b}_a.aei" --json > "$S/add.json"
        grep -q '"added": 360, "first_id": 1000, "count": 720' "$S/add.json" || fail "index add ($b)"
        "$A" index delete --index "$S/${b}_a.aei" --json 1000 1001 5 > "$S/del.json"
        grep -q '"removed": 3, "count": 717, "compacted": false' "$S/del.json" || fail "index delete ($b)"
        "$A" index delete --index "$S/${b}_a.aei" --compact --out "$S/${b}_c.aei" --quiet 7
        "$A" info --json "$S/${b}_c.aei" | grep -q '"count": 716' || fail "index delete --compact ($b)"
    done
    "$A" index add --index "$S/leaf.aei" --codes "$W/codes.npy" --quiet # ids 360..719
    "$A" info --json "$S/leaf.aei" | grep -q '"count": 720'

    # search: table, JSON lines, picture; every kind of query
    "$A" search --model "$M" --index "$W/ball.aei" --data "$D" -k 4 "$D/clock.npy:3" > "$S/table.txt"
    grep -q "^query $D/clock.npy:3 (clock)$" "$S/table.txt" || fail "search table header"
    grep -q "^     1 .*clock           $D/clock.npy:" "$S/table.txt" || fail "search table rows"
    [ "$(grep -c '^  *[0-9] ' "$S/table.txt")" -eq 4 ] || fail "search -k 4 rows"
    "$H" png "$D/star.npy" 2 "$S/star2.png" gray 1
    "$A" search --model "$M" --index "$W/ball.aei" --data "$D" --k=3 --json --png "$S/strip.png" \
        id:0 "$D/book.npy:1" "$S/star2.png" "$D/clock.npy" > "$S/search.json"
    [ "$(grep -c '"type": "search"' "$S/search.json")" -eq 123 ] || fail "3 + 120 queries"
    grep -q '"query": "id:0", "query_category": "book", "neighbours": \[{"rank": 1, "id": 0, "distance": [0-9.e-]*, "label": 0, "category": "book"' "$S/search.json" ||
        fail "search id:0"
    grep -q "\"query\": \"$S/star2.png\", \"query_category\": null" "$S/search.json" || fail "PNG query"
    "$A" info "$S/strip.png" | grep -q 'PNG image, [0-9]*x[0-9]*, grey'
    # without --data: ids, distances and the index's labels only
    "$A" search --model "$M" --index "$W/ball.aei" --json "$D/star.npy:2" > "$S/nodata.json"
    grep -q '"label": 2, "category": null, "source": null' "$S/nodata.json" || fail "search without --data"
    # HNSW with a search-time ef
    "$A" search --model "$M" --index "$S/hnsw.aei" --data "$D" --ef 100 -k 5 id:7 > "$S/hnsw.txt"
    grep -q '^     1          7      0.0000  book' "$S/hnsw.txt" || fail "hnsw search"

    # info on every kind of file, text and JSON
    "$A" info "$M" "$W/ball.aei" "$W/codes.npy" "$S/star2.png" > "$S/info.txt"
    grep -q "^$M: model file, format version 2, checksum ok" "$S/info.txt"
    grep -q '^  code        layer 6 (max_pooling2d_2), 4x4x8 = 128 values' "$S/info.txt"
    grep -q 'Total params: 4,385' "$S/info.txt"
    grep -q "^$W/ball.aei: index file, format version 4, checksum ok" "$S/info.txt"
    grep -q "^$S/star2.png: PNG image, 28x28, grey" "$S/info.txt"
    "$A" info --json "$M" | grep -q '"kind": "model", "format_version": 2, "checksum": "ok", "input": \[28, 28, 1\], "parameters": 4385'

    # reconstruct
    "$A" reconstruct --model "$M" --data "$D" --png "$S/rec.png" -n 6 --json > "$S/rec.json"
    grep -q '"drawn": 6, "rows": 360, "bce": 0\.[0-9]' "$S/rec.json" || fail "reconstruct --json"
    "$A" info "$S/rec.png" | grep -q 'PNG image'
    "$A" reconstruct --model "$M" --data "$D/clock.npy" --png "$S/rec2.png" > "$S/rec.txt"
    grep -q '^drew 10 of 120 rows above their reconstructions' "$S/rec.txt"
    ;;

errors)
    # missing files
    expect 2 "$S/nope: No such file or directory" "$A" train --data "$S/nope" --model conv --out "$S/x.aem"
    expect 2 "nope.aem" "$A" encode --model "$S/nope.aem" --data "$D" --out "$S/x.npy"
    expect 2 "nope.aei" "$A" search --model "$M" --index "$S/nope.aei" id:1
    expect 2 "$S/nope.png: No such file" "$A" search --model "$M" --index "$W/ball.aei" "$S/nope.png"
    # corrupt and truncated files
    cp "$M" "$S/bad.aem"
    printf '\377\377\377\377' | dd of="$S/bad.aem" bs=1 seek=200 conv=notrunc 2> /dev/null
    expect 2 "bad.aem.*checksum" "$A" encode --model "$S/bad.aem" --data "$D" --out "$S/x.npy"
    expect 2 "bad.aem" "$A" info "$S/bad.aem"
    grep -q "bad.aem: model file, format version 2, checksum mismatch" "$S/out.txt" || fail "info on a corrupt model"
    head -c 300 "$W/ball.aei" > "$S/short.aei"
    expect 2 "short.aei" "$A" search --model "$M" --index "$S/short.aei" id:1
    echo "not a picture" > "$S/fake.png"
    expect 2 "fake.png: not a readable PNG" "$A" search --model "$M" --index "$W/ball.aei" "$S/fake.png"
    cp "$S/fake.png" "$S/fake.txt"
    expect 2 "fake.txt: not a libautoenc model, index or checkpoint" "$A" info "$S/fake.txt"
    expect 2 "not a .npy file, a .png image" "$A" encode --model "$M" --data "$S/fake.txt" --out "$S/x.npy"
    # outputs that cannot be written
    expect 2 "cannot write $S/no/dir/x.aem" "$A" train --data "$D/book.npy" --model simple --epochs 1 --out "$S/no/dir/x.aem"
    expect 2 "cannot write" "$A" encode --model "$M" --data "$D" --out "$S/no/dir/x.npy"
    # wrong code size: an index of the conv model's 128-value codes, searched with a 32-value model
    "$A" train --data "$D/book.npy" --model simple --epochs 1 --quiet --out "$S/simple.aem"
    expect 4 "does not hold codes of model .*128 dimensions but 32" "$A" search --model "$S/simple.aem" --index "$W/ball.aei" "$D/book.npy:0"
    # rows that do not fit the model, labels that do not fit the codes, --data that does not fit the index
    expect 4 "labels.npy: rows of 1 value (shape (360)), but the model takes 28x28 images" "$A" encode --model "$M" --data "$W/labels.npy" --out "$S/x.npy"
    "$A" encode --model "$M" --data "$D/book.npy" --out "$S/book_codes.npy" --quiet
    expect 4 "labels.npy holds 360 labels but the codes file has 120 rows" \
        "$A" index build --codes "$S/book_codes.npy" --labels "$W/labels.npy" --out "$S/x.aei"
    expect 4 "has 120 rows but .*ball.aei holds 360 codes" "$A" search --model "$M" --index "$W/ball.aei" --data "$D/book.npy" id:1
    expect 4 "rows of 128 values" "$A" search --model "$M" --index "$W/ball.aei" "$W/codes.npy:0"
    # Ctrl-C or SIGTERM during training: exit 130, nothing written
    "$A" train --data "$D" --model simple --epochs 1000000 --json --out "$S/int.aem" \
        > "$S/int.json" 2> "$S/int.err" &
    pid=$!
    tries=0
    until grep -q '"type": "epoch"' "$S/int.json" 2> /dev/null; do
        tries=$((tries + 1))
        [ $tries -lt 600 ] || { kill $pid; fail "training never reached its first epoch"; }
        sleep 0.1
    done
    kill -TERM $pid
    set +e
    wait $pid
    got=$?
    set -e
    [ $got -eq 130 ] || fail "SIGTERM during training: exit status $got, expected 130"
    grep -q "interrupted: $S/int.aem was not written" "$S/int.err" || fail "no interruption message"
    [ ! -e "$S/int.aem" ] || fail "an interrupted training wrote its model"
    # numbers: NaN in the data
    "$H" f32 "$D/star.npy" "$S/nan.npy" nan
    expect 3 "nan.npy: row 1 holds NaN" "$A" train --data "$S/nan.npy" --model simple --out "$S/x.aem"
    # bad model specs point at the token
    expect 1 "model spec, column 37: unknown layer 'cnv'" "$A" train --data "$D" \
        --model "input 28x28x1; conv 16 3 same relu; cnv 8 3" --out "$S/x.aem"
    grep -q '^                                      \^~~$' "$S/err.txt" || fail "caret under 'cnv'"
    expect 1 "column 31: 'reluu' is not a stride (stride=N), a padding (same, valid) or an activation" "$A" train --data "$D" \
        --model "input 28x28x1; conv 16 3 same reluu; code" --out "$S/x.aem"
    expect 1 "column 31: 'stride=0' is not a stride" "$A" train --data "$D" \
        --model "input 28x28x1; conv 16 3 same stride=0; code" --out "$S/x.aem"
    expect 1 "column 21: 'leaky_relu=x' is not an activation" "$A" train --data "$D" \
        --model "input 784; dense 32 leaky_relu=x; code" --out "$S/x.aem"
    expect 1 "column 21: 'relu=0.1' is not an activation" "$A" train --data "$D" \
        --model "input 784; dense 32 relu=0.1; code" --out "$S/x.aem"
    expect 1 "column 26: 'wrap': only 'clip'" "$A" train --data "$D" \
        --model "input 28x28x1; noise 0.5 wrap; code" --out "$S/x.aem"
    expect 1 "column 20: 'lots' is not a rate" "$A" train --data "$D" \
        --model "input 784; dropout lots; code" --out "$S/x.aem"
    expect 1 "column 12: dropout: 1.5 is out of range" "$A" train --data "$D" \
        --model "input 784; dropout 1.5; code" --out "$S/x.aem"
    expect 1 "column 18: 'abc' is not a number of units" "$A" train --data "$D" \
        --model "input 784; dense abc; code" --out "$S/x.aem"
    expect 1 "column 12: conv: needs an image" "$A" train --data "$D" \
        --model "input 784; conv 3 3; code" --out "$S/x.aem"
    expect 1 "no 'code'" "$A" train --data "$D" --model "input 784; dense 32 relu; dense 784 sigmoid" --out "$S/x.aem"
    expect 1 "gives 780 values per row but the input has 784" "$A" train --data "$D" \
        --model "input 784; dense 32 relu; code; dense 780 sigmoid" --out "$S/x.aem"
    printf 'input 28x28x1\nconv 4 3 same relu\n  pol same\ncode\n' > "$S/bad.spec"
    expect 1 "bad.spec:3:3: unknown layer 'pol'" "$A" train --data "$D" --model "@$S/bad.spec" --out "$S/x.aem"
    expect 1 "'cnv' is not a preset" "$A" train --data "$D" --model cnv --out "$S/x.aem"
    expect 2 "nope.spec: No such file" "$A" train --data "$D" --model "@$S/nope.spec" --out "$S/x.aem"
    # the command line
    expect 1 "unknown command 'trian'" "$A" trian
    expect 1 "train: unknown option '--epoch'" "$A" train --epoch 3
    expect 1 "train: --epochs: '0' is out of range" "$A" train --epochs 0
    expect 1 "train: --lr: 'fast' is not a finite number" "$A" train --lr fast
    expect 1 "train: --optimizer: 'adamw' is not one of nadam adam sgd" "$A" train --optimizer adamw
    expect 1 "train: --out FILE.aem is required" "$A" train --data "$D" --model conv
    expect 1 "train: --json takes no value" "$A" train --json=1
    expect 1 "train: --batch needs a value" "$A" train --batch
    expect 1 "index add: --index INDEX.aei is required" "$A" index add
    expect 1 "index delete: an ID is required" "$A" index delete --index "$W/ball.aei"
    expect 1 "'x1' is not an id" "$A" index delete --index "$W/ball.aei" x1
    expect 1 "no code has id 99999" "$A" index delete --index "$W/ball.aei" --out "$S/x.aei" 99999
    expect 1 "id 0 is already in the index" "$A" index add --index "$W/ball.aei" \
        --codes "$W/codes.npy" --labels "$W/labels.npy" --first-id 0 --out "$S/x.aei"
    expect 4 "the index has labels" "$A" index add --index "$W/ball.aei" --codes "$W/codes.npy" \
        --out "$S/x.aei"
    expect 1 "index build: --leaf-size does not apply to the hnsw backend" "$A" index build \
        --codes "$W/codes.npy" --backend hnsw --leaf-size 4 --out "$S/x.aei"
    expect 1 "-k 1000 is more than the 360 codes" "$A" search --model "$M" --index "$W/ball.aei" -k 1000 id:1
    expect 1 "an index id needs --data" "$A" search --model "$M" --index "$W/ball.aei" id:1
    expect 1 "no code in the index has id 999" "$A" search --model "$M" --index "$W/ball.aei" --data "$D" id:999
    expect 1 "has 120 rows (0 to 119)" "$A" search --model "$M" --index "$W/ball.aei" "$D/book.npy:120"
    expect 1 "is not FILE.png, FILE.npy:ROW" "$A" search --model "$M" --index "$W/ball.aei" clock
    expect 1 "--png needs --data" "$A" search --model "$M" --index "$W/ball.aei" --png "$S/x.png" id:1
    [ ! -e "$S/x.aem" ] && [ ! -e "$S/x.npy" ] && [ ! -e "$S/x.aei" ] || fail "a failed command wrote its output"
    ;;

roundtrip)
    # train -> encode -> index build -> search through the command, against
    # the library computing the same neighbours itself (brute force)
    for b in balltree brute; do
        "$A" index build --codes "$W/codes.npy" --backend $b --out "$S/$b.aei" --quiet
        for q in clock.npy:5 star.npy:17 book.npy:0 book.npy:119; do
            "$A" search --model "$M" --index "$S/$b.aei" --data "$D" -k 12 --json "$D/$q" > "$S/r.json"
            ids_of "$S/r.json" > "$S/r.txt"
            "$H" reference "$M" "$D/book.npy" "$D/clock.npy" "$D/star.npy" -- \
                "$D/${q%%:*}" "${q##*:}" 12 < "$S/r.txt" > "$S/cmp.txt" ||
                { cat "$S/cmp.txt" >&2; fail "$b: $q differs from the library's answer"; }
        done
    done
    # an index id finds itself first, then neighbours in order of distance
    for id in 0 130 359; do
        "$A" search --model "$M" --index "$W/ball.aei" --data "$D" -k 20 --json "id:$id" > "$S/self.json"
        ids_of "$S/self.json" > "$S/self.txt"
        head -n 1 "$S/self.txt" | awk -v id="$id" '$1 != id || $2 > 1e-4 { exit 1 }' ||
            fail "id:$id is not its own nearest neighbour"
        awk 'NR > 1 && $2 < prev { exit 1 } { prev = $2 }' "$S/self.txt" || fail "id:$id: distances not sorted"
    done
    ;;

png)
    # identity-code models: the code layer is the flattened input, so a
    # code is exactly the pixels the command read
    "$H" png "$D/clock.npy" 0 "$S/clock_gray.png" gray 2        # 56x56, area-averaged to 28x28
    "$H" png "$D/clock.npy" 0 "$S/clock_dark.png" rgb-dark 1    # dark ink on white, RGB
    "$H" png "$D/clock.npy" 0 "$S/clock_alpha.png" rgba 3       # white, ink as alpha, 84x84
    "$A" train --data "$D/clock.npy" --model "input 28x28x1; flatten; code; dense 784 sigmoid" \
        --epochs 1 --quiet --out "$S/id28.aem"
    "$A" encode --model "$S/id28.aem" --data "$D/clock.npy" --out "$S/npy_codes.npy" --quiet
    "$A" encode --model "$S/id28.aem" --data "$S/clock_gray.png" --out "$S/gray.npy" --quiet
    "$A" encode --model "$S/id28.aem" --data "$S/clock_dark.png" --invert --out "$S/dark.npy" --quiet
    "$A" encode --model "$S/id28.aem" --data "$S/clock_alpha.png" --out "$S/alpha.npy" --quiet
    for f in gray dark alpha; do
        "$H" same "$S/npy_codes.npy" 0 "$S/$f.npy" 0 1e-6 > /dev/null || fail "$f PNG != the .npy row"
    done
    # dark ink without --invert reads as mostly ink: a note says so
    "$A" encode --model "$S/id28.aem" --data "$S/clock_dark.png" --out "$S/x.npy" 2> "$S/err.txt"
    grep -q 'note: .*mostly ink.*pass --invert' "$S/err.txt" || fail "no --invert hint"
    # BT.601 luma: red, green, blue, white; transparent white is background
    "$H" pixels "$S/rgbw.png" 2 2 255,0,0,255 0,255,0,255 0,0,255,255 255,255,255,255
    "$A" train --data "$S/rgbw.png" --model "input 2x2; flatten; code; dense 4 sigmoid" \
        --validation-split 0 --epochs 1 --quiet --out "$S/id2.aem"
    "$A" encode --model "$S/id2.aem" --data "$S/rgbw.png" --out "$S/rgbw.npy" --quiet
    "$H" values "$S/rgbw.npy" 0 1e-6 0.299 0.587 0.114 1
    "$A" encode --model "$S/id2.aem" --data "$S/rgbw.png" --invert --out "$S/rgbw_inv.npy" --quiet
    "$H" values "$S/rgbw_inv.npy" 0 1e-6 0.701 0.413 0.886 0
    "$H" pixels "$S/alpha.png" 2 2 255,255,255,0 255,255,255,64 0,0,0,0 0,0,0,255
    "$A" encode --model "$S/id2.aem" --data "$S/alpha.png" --invert --out "$S/alpha2.npy" --quiet
    "$H" values "$S/alpha2.npy" 0 1e-6 0 0 0 1
    # aspect ratio: a 2x1 picture is padded with background to 2x2 (odd row after)
    "$H" pixels "$S/wide.png" 2 1 255,255,255,255 255,255,255,255
    "$A" encode --model "$S/id2.aem" --data "$S/wide.png" --out "$S/wide.npy" --quiet
    "$H" values "$S/wide.npy" 0 1e-6 1 1 0 0
    # shrinking 3 -> 2 by area: [0 1 1] gives [1/3 1]
    "$H" pixels "$S/three.png" 3 3 0,0,0,255 255,255,255,255 255,255,255,255 \
        0,0,0,255 255,255,255,255 255,255,255,255 0,0,0,255 255,255,255,255 255,255,255,255
    "$A" encode --model "$S/id2.aem" --data "$S/three.png" --out "$S/three.npy" --quiet
    "$H" values "$S/three.npy" 0 1e-6 0.333333 1 0.333333 1
    # enlarging 2 -> 4 bilinearly, centres aligned: [0 1] gives [0 .25 .75 1]
    "$H" pixels "$S/two.png" 2 2 0,0,0,255 255,255,255,255 0,0,0,255 255,255,255,255
    "$A" train --data "$S/two.png" --model "input 4x4x1; flatten; code; dense 16 sigmoid" \
        --validation-split 0 --epochs 1 --quiet --out "$S/id4.aem"
    "$A" encode --model "$S/id4.aem" --data "$S/two.png" --out "$S/two.npy" --quiet
    "$H" values "$S/two.npy" 0 1e-6 0 .25 .75 1 0 .25 .75 1 0 .25 .75 1 0 .25 .75 1
    # a folder of PNGs is one category named after the folder, files in name order
    mkdir -p "$S/mine"
    cp "$S/clock_gray.png" "$S/mine/b.png"
    cp "$S/clock_alpha.png" "$S/mine/a.png"
    "$A" encode --model "$M" --data "$S/mine" --out "$S/mine_codes.npy" --labels-out "$S/mine_labels.npy" --json > "$S/mine.json"
    grep -q '"rows": 2, "code_size": 128, "categories": 1' "$S/mine.json" || fail "PNG folder"
    "$A" index build --codes "$S/mine_codes.npy" --out "$S/mine.aei" --quiet
    "$A" search --model "$M" --index "$S/mine.aei" --data "$S/mine" -k 2 id:1 > "$S/mine.txt"
    grep -q "^query id:1 (mine)" "$S/mine.txt" || fail "PNG folder category"
    grep -q "mine  *$S/mine/b.png" "$S/mine.txt" || fail "PNG folder source"
    # rows of a square size are images (784 = 28x28); others take no PNG
    "$A" train --data "$D/book.npy" --model "input 784; dense 10 relu; code; dense 784 sigmoid" \
        --epochs 1 --quiet --out "$S/d784.aem"
    "$A" encode --model "$S/d784.aem" --data "$S/clock_gray.png" --out "$S/d784.npy" --quiet
    "$A" train --data "$W/codes.npy" --model "input 128; dense 8 relu; code; dense 128 linear" \
        --loss mse --epochs 1 --quiet --out "$S/v128.aem"
    expect 4 "clock_gray.png: this model's rows (128 values) are not grey images" \
        "$A" encode --model "$S/v128.aem" --data "$S/clock_gray.png" --out "$S/x.npy"
    ;;

progress)
    command -v script > /dev/null 2>&1 || { echo "script(1) not found: skipped"; exit 77; }
    run="$A train --data $D --model simple --epochs 2 --batch 8 --out $S/p.aem"
    # on a terminal: the progress line (bar, loss, images/s, ETA) on stderr
    script -qefc "$run" /dev/null > "$S/tty.log" < /dev/null
    grep -q 'epoch 1/2 \[[#.]*\] [0-9]*/36  loss [0-9.]*  [0-9,]* img/s  ETA [0-9]*:[0-9][0-9]' "$S/tty.log" ||
        { cat -v "$S/tty.log" >&2; fail "no progress line on a terminal"; }
    grep -q "$(printf '\r')" "$S/tty.log" || fail "the progress line is not redrawn in place"
    grep -q 'epoch 2/2: loss' "$S/tty.log" || fail "no epoch line on a terminal"
    script -qefc "$A encode --model $M --data $D --out $S/c.npy" /dev/null > "$S/tty_enc.log" < /dev/null
    grep -q 'encoding \[####################\] 360/360 rows' "$S/tty_enc.log" || fail "no encode progress"
    # --quiet on a terminal: nothing
    script -qefc "$run --quiet" /dev/null > "$S/tty_quiet.log" < /dev/null
    ! grep -q 'ETA\|epoch' "$S/tty_quiet.log" || fail "--quiet still shows progress"
    # piped: no progress line, the epoch lines on stdout
    $run 2> "$S/pipe_err.log" | cat > "$S/pipe_out.log"
    [ ! -s "$S/pipe_err.log" ] || { cat "$S/pipe_err.log" >&2; fail "progress written into a pipe"; }
    grep -q '^epoch 1/2: loss' "$S/pipe_out.log" || fail "no epoch lines in the pipe"
    # stderr redirected to a file while stdout is a terminal: still no progress line
    script -qefc "$run 2> $S/file_err.log" /dev/null > /dev/null < /dev/null
    ! grep -q 'ETA' "$S/file_err.log" || fail "progress written into a file"
    ;;

manpage)
    man=$SRC/docs/autoenc.1
    [ -s "$man" ] || fail "no $man"
    # every option of every --help is documented (hyphens escaped as \-)
    for cmd in train encode "index build" search info reconstruct; do
        # shellcheck disable=SC2086
        for opt in $("$A" $cmd --help | grep -o -e '--[a-z][a-z-]*' | sort -u); do
            esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
            grep -q -e "$esc" "$man" || fail "$cmd $opt is not in docs/autoenc.1"
        done
    done
    for code in 0 1 2 3 4 5 130; do
        grep -q "^\.B $code$" "$man" || fail "exit status $code is not in docs/autoenc.1"
    done
    if command -v groff > /dev/null 2>&1; then
        groff -man -Tutf8 -ww -z "$man" 2> "$S/groff.txt"
        [ ! -s "$S/groff.txt" ] || { cat "$S/groff.txt" >&2; fail "groff warnings"; }
    else
        echo "groff not found: the rendering check is skipped"
    fi
    ;;

installed)
    # the runtime component alone (libautoenc.so.0, bin/autoenc, the man
    # page) in a fresh prefix: the command finds its library through its RPATH
    "$CMAKE" --install "$AE_BUILD_DIR" --prefix "$S/prefix" --component runtime > "$S/install.log"
    P=$S/prefix
    [ -x "$P/bin/autoenc" ] || fail "bin/autoenc is not installed"
    [ -s "$P/share/man/man1/autoenc.1" ] || fail "the man page is not installed"
    env -u LD_LIBRARY_PATH "$P/bin/autoenc" --version | grep -q '^autoenc '
    env -u LD_LIBRARY_PATH "$P/bin/autoenc" train --data "$D/book.npy" --model simple --epochs 1 \
        --quiet --out "$S/i.aem"
    env -u LD_LIBRARY_PATH "$P/bin/autoenc" info "$S/i.aem" | grep -q 'model file'
    ;;

*)
    fail "unknown section"
    ;;
esac
echo "cli $section: ok"
