# Every target sets up the environment first (idempotent: scripts/setup.sh).
# ROS processes started from here stay on loopback: chatpose_ros.ros.netsafe sets
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a 127.0.0.1-only Fast DDS profile, a random
# ROS_DOMAIN_ID and ROS_LOG_DIR under build/ before rclpy.init(); the line below makes the
# discovery range explicit for anything else started by make.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export OMP_NUM_THREADS ?= 2

PY := .venv/bin/python

.PHONY: setup demo test bench train-default eval-default eval-perception colcon-check
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

# Person recall/precision and ms per image on the labelled real photos (tests/data/perception_labels.json):
# the old MediaPipe detector and every perception preset side by side, one thread; misses in build/eval_perception.json.
eval-perception: setup
	OMP_NUM_THREADS=1 $(PY) -m chatpose_ros.models.default.eval_perception --json build/eval_perception.json
