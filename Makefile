# Every target sets up the environment first (idempotent: scripts/setup.sh).
# ROS processes started from here stay on loopback: chatpose_ros.ros.netsafe sets
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a 127.0.0.1-only Fast DDS profile, a random
# ROS_DOMAIN_ID and ROS_LOG_DIR under build/ before rclpy.init(); the line below makes the
# discovery range explicit for anything else started by make.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export OMP_NUM_THREADS ?= 2

PY := .venv/bin/python

.PHONY: setup demo test bench train-default eval-default eval-reader eval-perception eval-questions eval-grounding eval-gestures eval-depth \
	eval-parse train-parser eval-tracking eval-faces eval-objects eval-posture
setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m chatpose_ros.cli demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m chatpose_ros.tools.bench all

train-default: setup
	OMP_NUM_THREADS=1 $(PY) -m chatpose_ros.models.default.offline.train --seed 0 --threads 1

eval-default: setup
	$(PY) -m chatpose_ros.models.default.offline.evaluate

# Every figure of the reader profile: the scene reader on held-out synthetic questions with its ablations and
# calibration, the hand-written real-photo questions, poses, and speed (2 threads); JSON in build/.
eval-reader: setup
	OMP_NUM_THREADS=2 $(PY) -m chatpose_ros.models.default.offline.evaluate_reader --threads 2 --json build/eval_reader.json

# Person recall/precision and ms per image on the labelled real photos (tests/data/perception_labels.json):
# every perception preset side by side, one thread; misses in build/eval_perception.json.
eval-perception: setup
	OMP_NUM_THREADS=1 $(PY) -m chatpose_ros.perception.offline.eval_perception --json build/eval_perception.json

# Hand-written questions about the labelled real photos (tests/data/real_questions.json) through the shipped
# default pipeline: accuracy per category, refusals, counting, answer variety, and per person question the
# scene line the model read about the expected person (perception's part of a failure); one thread; outcomes in build/.
# Every embedded profile side by side on the frozen held-out real questions (tests/data/real_questions2.json, hash
# checked) and the older diagnosis set: right / wrong / asked / refused per category, counts, no-match, yes/no,
# clarifying questions, follow-ups, self-contradictions, speed; the grounded profile's ablations; JSON in build/.
eval-grounding: setup
	OMP_NUM_THREADS=2 $(PY) -m chatpose_ros.tools.eval_grounding --threads 2 --failures --json build/eval_grounding.json

# COCO objects (every class but person) against by-eye labels (tests/data/object_labels.json): recall, recall of
# held objects, false detections per image and ms per image on 2 threads, every detector side by side (NanoDet
# stretch / letterbox, CenterNet when scripts/convert_perception_models.py has converted it); tuning images and the
# held-out check apart; JSON in build/.
eval-objects: setup
	OMP_NUM_THREADS=2 $(PY) -m chatpose_ros.perception.offline.eval_objects --threads 2 --misses --json build/eval_objects.json

# The face gender model against by-eye labels (tests/data/face_gender_labels.json), per label set.
eval-faces: setup
	$(PY) -m chatpose_ros.perception.offline.eval_faces --sets 1,2,3 --grid --json build/eval_faces.json

# Perception's posture and the grounding's depth proxy against by-eye labels (tests/data/posture_depth_labels.json), per label
# set: posture accuracy / coverage, depth-order pairwise accuracy of each proxy; set 2 the check (sets 3, 4 tuned on).
eval-posture: setup
	OMP_NUM_THREADS=1 $(PY) -m chatpose_ros.perception.offline.eval_posture --failures --json build/eval_posture.json

eval-questions: setup
	OMP_NUM_THREADS=1 $(PY) -m chatpose_ros.models.default.offline.eval_questions --threads 1 --failures --lines --json build/eval_questions.json

# Gestures over time (core/gestures.py): precision / recall / latency on synthetic sequences drawn from the
# held-out ranges (timings, amplitudes, frame rates, noise the thresholds were not set on), the pointing target,
# and the gestures read on CMU mocap (01_01, 01_03, Boxing_Toes) from four sides; JSON in build/.
eval-gestures: setup
	OMP_NUM_THREADS=1 $(PY) -m chatpose_ros.tools.eval_gestures --n 440 --split heldout --seed 1 --json build/eval_gestures.json
# The depth image path against the monocular fit on the same rendered people at 2-8 m: six Anny bodies posed from
# held-out CMU mocap, rendered depth with stereo-like noise, holes and flying pixels (docs/robot.md); one thread;
# a table per distance and build/eval_depth.json (median_rel_error_depth, median_rel_error_mono).
eval-depth: setup
	OMP_NUM_THREADS=1 $(PY) -m chatpose_ros.tools.eval_depth --rendered --json build/eval_depth.json

# The LLM question tagger (models.grounded.llm_parse) against the grammar parser and the bag-of-words ablation: exact
# parse, intent and per-slot F1 on held-out generated wordings (vocabulary, phrasings and frames never trained on)
# and on the hand-written new-user set; parse time p50 on 2 threads; JSON in build/.
eval-parse: setup
	OMP_NUM_THREADS=2 $(PY) -m chatpose_ros.models.grounded.offline.eval_parse --threads 2 --json build/eval_parse.json

# Train the LLM question tagger and its bag-of-words ablation (CPU, 2 threads, about 25 minutes; fixed seed).
train-parser: setup
	OMP_NUM_THREADS=2 $(PY) -m chatpose_ros.models.grounded.offline.train_parser --seed 0 --threads 2

# The tracked target on hand-labelled vtest.avi (tests/data/vtest_tracks.json; tuning 480-639, held out 640-790):
# target id switches, losses, time to reacquire, IDF1 / ID switches / MOTA (motmetrics), tracker before and after
# issue 23 side by side; one thread; JSON in build/.
eval-tracking: setup
	OMP_NUM_THREADS=1 $(PY) -W ignore::DeprecationWarning -m chatpose_ros.tools.eval_tracking --json build/eval_tracking.json
