#!/bin/sh
# What systemd does with kubeadm's kubelet unit and its drop-in 10-kubeadm.conf, for an
# emulated node that has no systemd: start the kubelet once kubeadm has written its config,
# with the same files and variables, and start it again whenever it exits (Restart=always,
# RestartSec=1 here instead of 10: kubeadm waits for it).
while :; do
  if [ -f /var/lib/kubelet/config.yaml ]; then
    KUBELET_KUBEADM_ARGS=
    KUBELET_EXTRA_ARGS=
    [ -f /var/lib/kubelet/kubeadm-flags.env ] && . /var/lib/kubelet/kubeadm-flags.env
    [ -f /etc/default/kubelet ] && . /etc/default/kubelet
    # shellcheck disable=SC2086 # word splitting of the argument lists is what systemd does
    kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf \
      --config=/var/lib/kubelet/config.yaml $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
    echo "kubelet-unit: kubelet exited with $?, starting it again in 1 s"
  fi
  sleep 1
done
